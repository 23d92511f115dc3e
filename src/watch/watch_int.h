/* Helpers shared inside src/watch/: reading a run folder's metrics.jsonl line by line. */
#ifndef TERN_WATCH_INT_H
#define TERN_WATCH_INT_H
#include "tern/watch.h"

#include <cjson/cJSON.h>

/* Called for each record of metrics.jsonl: obj is the line's JSON object, step its "step" (a
 * whole number from 0 to 2^53), lineno the line's number from 1. A status other than TERN_OK
 * stops the reading and is returned. */
typedef tern_status (*watch_line_fn)(void *ctx, const cJSON *obj, uint64_t step, size_t lineno);

/* Reads path as metrics.jsonl (docs/FORMATS.md): blank lines are skipped, and so are the lines of
 * skipped steps, which tern writes with a non-finite loss or norm ("nan", not JSON) beside
 * "skipped":true, and a last line cut off without its newline (a writer killed mid-line). Any
 * other line that is not a JSON object with a whole-number "step" is an error naming the file and
 * line. A sealed file (--seal-metrics) is refused by name. Stores the number of records read. */
tern_status watch_read_metrics(const char *path, watch_line_fn fn, void *ctx, size_t *n_records);

/* A number field of obj, or NAN when absent or not a number. */
double watch_num(const cJSON *obj, const char *key);
#endif
