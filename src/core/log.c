/* Logging to standard error with a level; progress display lives with the trainer. */
#include "tern/core.h"

#include <time.h>

static tern_log_level log_level = TERN_LOG_INFO;

void tern_log_set_level(tern_log_level lvl) { log_level = lvl; }

void tern_log(tern_log_level lvl, const char *fmt, ...) {
    if (lvl > log_level) return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "tern: %s: ", names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double tern_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tern_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tern_fmt_duration(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 1e9) {
        snprintf(out, n, "?");
    } else if (s >= 3600) {
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    } else if (s >= 60) {
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    } else {
        snprintf(out, n, "%ds", (int)s);
    }
}
