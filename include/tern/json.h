/* Strict JSON readers over cJSON, for every file tern reads that people write by hand: unknown
 * keys refused by name, types and ranges checked, messages naming the file (`what`), the field,
 * what was expected and what was found. */
#ifndef TERN_JSON_H
#define TERN_JSON_H
#include <cjson/cJSON.h>

#include "tern/core.h"

/* Parses text into a cJSON tree, with a message naming `what` and the position of a syntax error;
 * only whitespace may follow the value. */
tern_status tern_json_parse(cJSON **out, const char *p, size_t n, const char *what);
/* Reads a whole small file and parses it. */
tern_status tern_json_load(cJSON **out, const char *path);
/* Fails with TERN_EFORMAT naming the first key of obj that is not in keys (NULL-terminated), so
 * that a misspelt rule or field is refused rather than silently ignored. */
tern_status tern_json_check_keys(const cJSON *obj, const char *const *keys, const char *what);
/* Reads obj[key] as a non-empty string into out (size n). required: a missing key is an error;
 * otherwise out is left as it was. */
tern_status tern_json_string(const cJSON *obj, const char *key, int required, char *out, size_t n, const char *what);
/* Reads obj[key] as a finite number into *v (left as it was when absent and not required). */
tern_status tern_json_number(const cJSON *obj, const char *key, int required, double *v, const char *what);
/* Reads a whole number in [lo, hi]. */
tern_status tern_json_long(const cJSON *obj, const char *key, int required, long lo, long hi, long *v, const char *what);
/* Adds key: v, or key: null when v is NAN (or <= 0 when zero_is_null). NULL on out of memory. */
cJSON *tern_json_add_num(cJSON *obj, const char *key, double v, int zero_is_null);
#endif
