/* Allocation: every large buffer is one aligned, zeroed block, and a failure says how much
 * was asked for and for what (docs/STYLE.md, "Memory": one region per lifetime). */
#include "tern/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* bytes (at least 1) in a block aligned to 64 bytes; *size gets the block's size, bytes rounded
 * up. Buffers of 4 MiB and more (weights, gradients, activations, the optimizer's moments, bf16
 * operand copies) are aligned to 2 MiB and offered transparent huge pages before anything
 * touches them: a 2 MiB page takes one TLB entry where 4 KiB pages take 512, and the kernels
 * walk these buffers across thousands of pages (training steps on Zen 4 ran 2.5-5.3% faster,
 * fp32 and bf16, S and GPT-2 small; docs/PERFORMANCE.md). That costs at most 2 MiB of rounding
 * per buffer. Linux grants them where /sys/kernel/mm/transparent_hugepage/enabled says
 * "madvise" or "always"; TERN_HUGEPAGES=0 keeps to small pages. NULL when memory gives out or
 * the size overflows. */
static void *block(size_t bytes, size_t *size) {
    if (bytes > SIZE_MAX - 63) return NULL;
    size_t rounded = bytes ? (bytes + 63) & ~(size_t)63 : 64;
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    const char *hp = getenv("TERN_HUGEPAGES");
    if (rounded >= 2 * huge && rounded <= SIZE_MAX - huge && !(hp && !strcmp(hp, "0"))) {
        size_t hr = (rounded + huge - 1) & ~(huge - 1);
        void *p = aligned_alloc(huge, hr);
        if (p) {
            (void)madvise(p, hr, MADV_HUGEPAGE); /* only advice: small pages where it is refused */
            *size = hr;
            return p;
        }
    }
#endif
    *size = rounded;
    return aligned_alloc(64, rounded);
}

tern_status tern_alloc(void **out, size_t bytes, const char *what) {
    size_t size = 0;
    *out = NULL;
    if (bytes > SIZE_MAX - 63) return tern_err(TERN_ENOMEM, "cannot allocate %zu bytes for %s: size overflows", bytes, what);
    void *p = block(bytes, &size);
    if (!p)
        return tern_err(TERN_ENOMEM, "out of memory: %s needs %zu bytes (%.1f MiB)", what, bytes,
                        (double)bytes / (1024.0 * 1024.0));
    memset(p, 0, size);
    *out = p;
    return TERN_OK;
}

void *tern_alloc_raw(size_t bytes) {
    size_t size;
    return block(bytes, &size);
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
