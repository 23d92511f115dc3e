/* Allocation: every large buffer is one aligned, zeroed block, and a failure says how much
 * was asked for and for what (docs/STYLE.md, "Memory": one region per lifetime). */
#include "tern/core.h"

#include <stdlib.h>
#include <string.h>

tern_status tern_alloc(void **out, size_t bytes, const char *what) {
    *out = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return tern_err(TERN_ENOMEM, "cannot allocate %zu bytes for %s: size overflows", bytes, what);
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p)
        return tern_err(TERN_ENOMEM, "out of memory: %s needs %zu bytes (%.1f MiB)", what, bytes,
                        (double)bytes / (1024.0 * 1024.0));
    memset(p, 0, rounded);
    *out = p;
    return TERN_OK;
}

void tern_free(void *p) { free(p); }

int tern_mul_size(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int tern_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}
