/* Errors: one message per thread (like sqlite3_errmsg), set by the function that found the
 * problem and read by the caller that reports it. Not for programmer errors: those abort. */
#include "tern/core.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local char err_msg[2048];
static tern_abort_hook abort_hook;

tern_status tern_err(tern_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return st;
}

tern_status tern_err_wrap(tern_status st, const char *fmt, ...) {
    char prefix[1024], old[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err_msg - 3) n = sizeof err_msg - 3;
    memcpy(err_msg, prefix, n);
    err_msg[n] = ':';
    err_msg[n + 1] = ' ';
    size_t room = sizeof err_msg - n - 3, m = strlen(old);
    if (m > room) m = room;
    memcpy(err_msg + n + 2, old, m);
    err_msg[n + 2 + m] = 0;
    return st;
}

void tern_fmt(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

const char *tern_errmsg(void) { return err_msg[0] ? err_msg : "no error"; }
void tern_err_clear(void) { err_msg[0] = 0; }

const char *tern_status_name(tern_status st) {
    switch (st) {
    case TERN_OK: return "ok";
    case TERN_EIO: return "i/o error";
    case TERN_EFORMAT: return "bad format";
    case TERN_ENOMEM: return "out of memory";
    case TERN_EINVAL: return "invalid argument";
    case TERN_EAUTH: return "authentication failed";
    case TERN_ENOTFOUND: return "not found";
    case TERN_EPOLICY: return "forbidden by policy";
    case TERN_EDIST: return "distributed error";
    case TERN_ENUMERIC: return "numeric fault";
    case TERN_EBUSY: return "in use";
    }
    return "unknown status";
}

void tern_set_abort_hook(tern_abort_hook hook) { abort_hook = hook; }

_Noreturn void tern_abort(const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "tern: internal error at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof msg) vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", msg);
    fflush(NULL);
    if (abort_hook) abort_hook(msg);
    abort();
}
