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

void tern_buf_put(tern_buf *b, const void *p, size_t n) {
    if (b->oom || n == 0) return;
    if (n > SIZE_MAX - b->n) {
        b->oom = 1;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? b->n + n : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void tern_buf_put_le(tern_buf *b, uint64_t v, int bytes) {
    uint8_t t[8];
    for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
    tern_buf_put(b, t, (size_t)bytes);
}
