/* Strict JSON for the files people write by hand (site, policy, plan, model configs): a parse
 * that refuses trailing text and names the byte of a syntax error, and field readers whose
 * messages name the file, the field, what was expected and what was found. */
#include "tern/json.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cJSON *tern_json_add_num(cJSON *obj, const char *key, double v, int zero_is_null) {
    if (isnan(v) || isinf(v) || (zero_is_null && v <= 0)) return cJSON_AddNullToObject(obj, key);
    return cJSON_AddNumberToObject(obj, key, v);
}

tern_status tern_json_parse(cJSON **out, const char *p, size_t n, const char *what) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (!j) {
        size_t off = end && end >= p && end <= p + n ? (size_t)(end - p) : 0;
        return tern_err(TERN_EFORMAT, "%s: not valid JSON (syntax error near byte %zu)", what, off);
    }
    /* Only whitespace may follow the value. */
    if (end) {
        while (end < p + n && (isspace((unsigned char)*end) || *end == 0)) end++;
        if (end < p + n) {
            size_t off = (size_t)(end - p);
            cJSON_Delete(j);
            return tern_err(TERN_EFORMAT, "%s: unexpected text after the JSON value at byte %zu", what, off);
        }
    }
    *out = j;
    return TERN_OK;
}

tern_status tern_json_load(cJSON **out, const char *path) {
    char *buf;
    size_t n;
    TERN_TRY(tern_read_file(path, &buf, &n));
    tern_status st = tern_json_parse(out, buf, n, path);
    free(buf);
    return st;
}

tern_status tern_json_check_keys(const cJSON *obj, const char *const *keys, const char *what) {
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
        int ok = 0;
        for (int i = 0; keys[i]; i++)
            if (c->string && !strcmp(c->string, keys[i])) ok = 1;
        if (!ok) {
            char list[512] = "";
            for (int i = 0; keys[i]; i++) {
                if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, keys[i], sizeof list - strlen(list) - 1);
            }
            return tern_err(TERN_EFORMAT, "%s: unknown field \"%s\" (expected: %s)", what, c->string ? c->string : "",
                            list);
        }
    }
    return TERN_OK;
}

tern_status tern_json_string(const cJSON *obj, const char *key, int required, char *out, size_t n, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? tern_err(TERN_EFORMAT, "%s: missing field \"%s\"", what, key) : TERN_OK;
    if (!cJSON_IsString(v) || !v->valuestring)
        return tern_err(TERN_EFORMAT, "%s: field \"%s\" must be a string", what, key);
    size_t len = strlen(v->valuestring);
    if (len == 0) return tern_err(TERN_EFORMAT, "%s: field \"%s\" is empty", what, key);
    if (len >= n)
        return tern_err(TERN_EFORMAT, "%s: field \"%s\" is too long (%zu bytes, at most %zu)", what, key, len, n - 1);
    memcpy(out, v->valuestring, len + 1);
    return TERN_OK;
}

tern_status tern_json_number(const cJSON *obj, const char *key, int required, double *out, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? tern_err(TERN_EFORMAT, "%s: missing field \"%s\"", what, key) : TERN_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return tern_err(TERN_EFORMAT, "%s: field \"%s\" must be a number", what, key);
    *out = v->valuedouble;
    return TERN_OK;
}

tern_status tern_json_long(const cJSON *obj, const char *key, int required, long lo, long hi, long *out,
                         const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? tern_err(TERN_EFORMAT, "%s: missing field \"%s\"", what, key) : TERN_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return tern_err(TERN_EFORMAT, "%s: field \"%s\" must be a whole number from %ld to %ld", what, key, lo, hi);
    *out = (long)d;
    return TERN_OK;
}
