/* Reading a run's metrics.jsonl (docs/FORMATS.md "Run folder"), for the TensorBoard converter and
 * the plots. Not a writer: src/train/ writes the file. */
#include "watch/watch_int.h"

#include "tern/secure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double watch_num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The bytes [p, p+n) contain s. */
static int contains(const char *p, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(p + i, s, k)) return 1;
    return 0;
}

tern_status watch_read_metrics(const char *path, watch_line_fn fn, void *ctx, size_t *n_records) {
    char *text;
    size_t n, records = 0;
    TERN_TRY(tern_read_file(path, &text, &n));
    if (n >= TERN_SEAL_MAGIC_BYTES && !memcmp(text, TERN_SEAL_MAGIC, TERN_SEAL_MAGIC_BYTES)) {
        free(text);
        return tern_err(TERN_EFORMAT, "%s: sealed (the run used --seal-metrics); its metrics can only be read with the run's key",
                        path);
    }
    tern_status st = TERN_OK;
    size_t lineno = 0;
    for (const char *line = text; st == TERN_OK && line < text + n;) {
        const char *nl = memchr(line, '\n', (size_t)(text + n - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(text + n - line);
        lineno++;
        const char *next = nl ? nl + 1 : text + n;
        size_t k = len;
        while (k && (line[k - 1] == '\r' || line[k - 1] == ' ' || line[k - 1] == '\t')) k--;
        if (k == 0) {
            line = next;
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(line, k);
        if (!j && (contains(line, k, "\"skipped\":true") || !nl)) {
            line = next; /* a skipped step's non-finite numbers, or a torn last line */
            continue;
        }
        const cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
        if (!cJSON_IsObject(j)) {
            st = tern_err(TERN_EFORMAT, "%s: line %zu: not a JSON object: %.60s", path, lineno, line);
        } else if (!cJSON_IsNumber(s) || !(s->valuedouble >= 0 && s->valuedouble <= 9007199254740992.0) ||
                   s->valuedouble != floor(s->valuedouble)) {
            st = tern_err(TERN_EFORMAT, "%s: line %zu: no \"step\" that is a whole number from 0 to 2^53", path, lineno);
        } else {
            records++;
            st = fn(ctx, j, (uint64_t)s->valuedouble, lineno);
        }
        cJSON_Delete(j);
        line = next;
    }
    free(text);
    if (n_records) *n_records = records;
    return st;
}
