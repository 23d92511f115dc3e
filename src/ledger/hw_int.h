/* Private helpers shared by ledger/hw*.c, policy.c and plan.c: strict JSON field readers whose
 * messages name the file, the field, what was expected and what was found, and builders for the
 * device objects. Never included from outside src/ledger/. */
#ifndef TERN_LEDGER_HW_INT_H
#define TERN_LEDGER_HW_INT_H

#include <cjson/cJSON.h>

#include "tern/core.h"
#include "tern/hw.h"

/* Fails with TERN_EFORMAT naming the first key of obj that is not in keys (NULL-terminated), so
 * that a misspelt rule or field is refused rather than silently ignored. */
tern_status hw_json_check_keys(const cJSON *obj, const char *const *keys, const char *what);
/* Reads obj[key] as a non-empty string into out (size n). required: a missing key is an error;
 * otherwise out is left as it was. */
tern_status hw_json_string(const cJSON *obj, const char *key, int required, char *out, size_t n, const char *what);
/* Reads obj[key] as a finite number into *v (left as it was when absent and not required). */
tern_status hw_json_number(const cJSON *obj, const char *key, int required, double *v, const char *what);
/* Reads a whole number in [lo, hi]. */
tern_status hw_json_long(const cJSON *obj, const char *key, int required, long lo, long hi, long *v,
                         const char *what);
/* Adds key: v, or key: null when v is NAN (or <= 0 when zero_is_null). NULL on out of memory. */
cJSON *hw_json_add_num(cJSON *obj, const char *key, double v, int zero_is_null);
/* Parses text into a cJSON tree, with a message naming `what` and the position of a syntax error. */
tern_status hw_json_parse(cJSON **out, const char *p, size_t n, const char *what);
/* Reads a whole small file and parses it. */
tern_status hw_json_load(cJSON **out, const char *path);

/* {"fp64": x, ...}: the non-zero entries. */
cJSON *hw_tops_json(const double dense_tops[TERN_PREC_COUNT]);
/* Adds tpp, tpp_precision, tpp_bit_length, die_area_mm2, performance_density, eccn_3a090,
 * eccn_paragraph and eccn_reason to obj. Returns 0 on out of memory. */
int hw_class_add_json(cJSON *obj, const tern_hw_class *c, double die_area_mm2);

/* The 3A090 tests on a TPP already known (tern_hw_classify computes it from per-precision figures
 * first; a site file may declare it). */
void hw_classify_tpp(tern_hw_class *out, double tpp, tern_prec prec, double die_area_mm2, int datacenter);

/* snprintf for messages and field paths whose truncation is acceptable (the limit is generous). */
void hw_fmt(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
