/* GGUF reading and writing: a strict reader that checks every count, length, type, dimension
 * and offset against the bytes it was given before using them, and a writer that lays a file out
 * as ggml's reader requires. Not a model loader: GPT-2 in and out is in gguf_gpt2.c.
 * Follows ggml's docs/gguf.md (version 3) and the checks of ggml/src/gguf.cpp. */
#include "tern/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- types ---- */

static const char *const vtype_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
static const size_t vtype_sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
#define N_VTYPES (sizeof vtype_names / sizeof vtype_names[0])

const char *tern_gguf_vtype_name(uint32_t t) { return t < N_VTYPES ? vtype_names[t] : "?"; }

/* ggml's tensor types: elements per block and bytes per block (gguf-py's GGML_QUANT_SIZES).
 * Numbers missing from the list were removed from ggml and are refused. */
static const struct {
    uint32_t id;
    const char *name;
    size_t block, bytes;
} ggml_types[] = {
    {0, "f32", 1, 4},          {1, "f16", 1, 2},         {2, "q4_0", 32, 18},     {3, "q4_1", 32, 20},
    {6, "q5_0", 32, 22},       {7, "q5_1", 32, 24},      {8, "q8_0", 32, 34},     {9, "q8_1", 32, 40},
    {10, "q2_K", 256, 84},     {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},  {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},    {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
    {18, "iq3_xxs", 256, 98},  {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},  {21, "iq3_s", 256, 110},
    {22, "iq2_s", 256, 82},    {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},        {25, "i16", 1, 2},
    {26, "i32", 1, 4},         {27, "i64", 1, 8},        {28, "f64", 1, 8},       {29, "iq1_m", 256, 56},
    {30, "bf16", 1, 2},        {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},  {39, "mxfp4", 32, 17},
    {40, "nvfp4", 64, 36},     {41, "q1_0", 128, 18},
};

const char *tern_ggml_type_name(uint32_t t) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].id == t) return ggml_types[i].name;
    return NULL;
}

int tern_ggml_type_size(uint32_t t, size_t *block, size_t *bytes) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].id == t) {
            *block = ggml_types[i].block;
            *bytes = ggml_types[i].bytes;
            return 1;
        }
    return 0;
}

/* ---- f16 and q8_0 ---- */

uint16_t tern_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff); /* NaN stays NaN (quiet) */
    if (a >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 (halfway past 65504) rounds to infinity */
    if (a >= 0x38800000u) {
        /* normal half: rebias the exponent (127 -> 15) and round the 13 dropped bits to even;
         * a carry out of the mantissa correctly bumps the exponent */
        uint32_t r = a - 0x38000000u + 0xfffu + ((a >> 13) & 1u);
        return sign | (uint16_t)(r >> 13);
    }
    /* subnormal half (|f| < 2^-14): the result is round(|f| / 2^-24), to even */
    uint32_t e = a >> 23;
    if (e < 102) return sign; /* |f| < 2^-25: rounds to zero */
    uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e; /* |f|/2^-24 = m * 2^-shift, shift in [14, 24] */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return sign | (uint16_t)q;
}

float tern_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* zero or subnormal: exact */
        return sign ? -v : v;
    }
    if (e == 31)
        x = sign | 0x7f800000u | (m << 13);
    else
        x = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void tern_q8_0_quantize(uint8_t *out, const float *x, size_t n) {
    TERN_ASSERT(n % 32 == 0);
    for (size_t b = 0; b < n / 32; b++, x += 32, out += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t dh = tern_f32_to_f16(d);
        out[0] = (uint8_t)(dh & 0xff);
        out[1] = (uint8_t)(dh >> 8);
        for (int j = 0; j < 32; j++) out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

/* ---- reading ---- */

struct tern_gguf {
    tern_map map; /* when opened from a path */
    const uint8_t *buf;
    size_t size;
    char *label;
    uint32_t version;
    size_t alignment, data_offset;
    tern_gguf_kv *kv;
    size_t n_kv;
    tern_gguf_tensor *t;
    size_t n_t;
};

typedef struct {
    const uint8_t *p;
    size_t n, off;
    const char *label;
} cursor;

static uint64_t le(const uint8_t *p, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Reads k bytes as a little-endian integer; `what` says what was being read, for the message. */
static tern_status rd(cursor *c, int k, uint64_t *v, const char *what) {
    *v = 0;
    if (c->n - c->off < (size_t)k)
        return tern_err(TERN_EFORMAT, "%s: truncated: the file ends at byte %zu, inside %s", c->label, c->n, what);
    *v = le(c->p + c->off, k);
    c->off += (size_t)k;
    return TERN_OK;
}

static tern_status rd_str(cursor *c, tern_gguf_str *s, const char *what) {
    uint64_t len;
    TERN_TRY(rd(c, 8, &len, what));
    if (len > c->n - c->off)
        return tern_err(TERN_EFORMAT, "%s: %s: a string of %llu bytes runs past the end of the file (%zu bytes left)", c->label, what,
                        (unsigned long long)len, c->n - c->off);
    s->p = (const char *)c->p + c->off;
    s->n = len;
    c->off += (size_t)len;
    return TERN_OK;
}

/* A key or name fit to print: at most 60 bytes, anything unprintable as '?'. */
static const char *show(const tern_gguf_str *s, char buf[64]) {
    size_t k = s->n < 60 ? (size_t)s->n : 60;
    for (size_t i = 0; i < k; i++) buf[i] = (s->p[i] >= 0x20 && s->p[i] < 0x7f) ? s->p[i] : '?';
    if (s->n > 60) memcpy(buf + 57, "...", 3);
    buf[k] = 0;
    return buf;
}

static int str_eq(const tern_gguf_str *s, const char *z) {
    size_t n = strlen(z);
    return s->n == n && !memcmp(s->p, z, n);
}

static int cmp_str(const tern_gguf_str *a, const tern_gguf_str *b) {
    size_t k = a->n < b->n ? (size_t)a->n : (size_t)b->n;
    int c = memcmp(a->p, b->p, k);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

static int cmp_kv_ptr(const void *x, const void *y) {
    return cmp_str(&(*(const tern_gguf_kv *const *)x)->key, &(*(const tern_gguf_kv *const *)y)->key);
}

static int cmp_tensor_ptr(const void *x, const void *y) {
    return strcmp((*(const tern_gguf_tensor *const *)x)->name, (*(const tern_gguf_tensor *const *)y)->name);
}

void tern_gguf_free(tern_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) free(g->kv[i].strs);
    free(g->kv);
    free(g->t);
    tern_unmap(&g->map);
    free(g->label);
    free(g);
}

static tern_status parse_kv(cursor *c, tern_gguf_kv *kv, uint64_t i) {
    char what[128], b[64];
    snprintf(what, sizeof what, "key %llu", (unsigned long long)i);
    TERN_TRY(rd_str(c, &kv->key, what));
    if (kv->key.n == 0) return tern_err(TERN_EFORMAT, "%s: key %llu has an empty name", c->label, (unsigned long long)i);
    snprintf(what, sizeof what, "the value of key '%s'", show(&kv->key, b));
    uint64_t v;
    TERN_TRY(rd(c, 4, &v, what));
    kv->type = (uint32_t)v;
    kv->n = 1;
    uint32_t et = kv->type;
    if (kv->type == TERN_GGUF_ARRAY) {
        TERN_TRY(rd(c, 4, &v, what));
        et = kv->elem_type = (uint32_t)v;
        TERN_TRY(rd(c, 8, &kv->n, what));
        if (et == TERN_GGUF_ARRAY)
            return tern_err(TERN_EFORMAT, "%s: key '%s' is an array of arrays, which GGUF readers do not accept", c->label, b);
    }
    if (et >= N_VTYPES) {
        return tern_err(TERN_EFORMAT, "%s: key '%s' has unknown %stype %u", c->label, b, kv->type == TERN_GGUF_ARRAY ? "element " : "",
                        et);
    }
    size_t left = c->n - c->off;
    if (et == TERN_GGUF_STRING) {
        /* each string takes at least its 8-byte length */
        if (kv->n > left / 8)
            return tern_err(TERN_EFORMAT, "%s: key '%s': %llu strings cannot fit in the %zu bytes left", c->label, b,
                            (unsigned long long)kv->n, left);
        kv->strs = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->strs);
        if (!kv->strs) return tern_err(TERN_ENOMEM, "%s: out of memory for key '%s' (%llu strings)", c->label, b, (unsigned long long)kv->n);
        for (uint64_t j = 0; j < kv->n; j++) TERN_TRY(rd_str(c, &kv->strs[j], what));
        return TERN_OK;
    }
    size_t es = vtype_sizes[et];
    if (kv->n > left / es)
        return tern_err(TERN_EFORMAT, "%s: key '%s': %llu values of type %s run past the end of the file (%zu bytes left)", c->label, b,
                        (unsigned long long)kv->n, vtype_names[et], left);
    kv->data = c->p + c->off;
    c->off += (size_t)kv->n * es;
    return TERN_OK;
}

static tern_status parse_tensor_info(cursor *c, tern_gguf_tensor *t, uint64_t i) {
    char what[128];
    tern_gguf_str name;
    snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
    TERN_TRY(rd_str(c, &name, what));
    if (name.n >= TERN_GGUF_MAX_NAME)
        return tern_err(TERN_EFORMAT, "%s: the name of tensor %llu is %llu bytes long; GGUF allows at most %d", c->label,
                        (unsigned long long)i, (unsigned long long)name.n, TERN_GGUF_MAX_NAME - 1);
    if (memchr(name.p, 0, (size_t)name.n))
        return tern_err(TERN_EFORMAT, "%s: the name of tensor %llu contains a NUL byte", c->label, (unsigned long long)i);
    memcpy(t->name, name.p, (size_t)name.n);
    t->name[name.n] = 0;
    const char *L = c->label, *nm = t->name;
    snprintf(what, sizeof what, "the description of tensor '%s'", nm);
    uint64_t v;
    TERN_TRY(rd(c, 4, &v, what));
    t->n_dims = (uint32_t)v;
    if (t->n_dims > TERN_GGUF_MAX_DIMS)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has %u dimensions; GGUF allows at most %d", L, nm, t->n_dims, TERN_GGUF_MAX_DIMS);
    uint64_t numel = 1;
    for (uint32_t j = 0; j < TERN_GGUF_MAX_DIMS; j++) {
        t->ne[j] = 1;
        if (j < t->n_dims) TERN_TRY(rd(c, 8, &t->ne[j], what));
        if (t->ne[j] > (uint64_t)INT64_MAX)
            return tern_err(TERN_EFORMAT, "%s: tensor '%s' dimension %u is %llu, more than ggml can index", L, nm, j,
                            (unsigned long long)t->ne[j]);
    }
    for (uint32_t j = 0; j < TERN_GGUF_MAX_DIMS; j++) {
        if (t->ne[j] != 0 && numel > (uint64_t)INT64_MAX / t->ne[j])
            return tern_err(TERN_EFORMAT, "%s: tensor '%s' has more elements than ggml can index", L, nm);
        numel *= t->ne[j];
    }
    t->numel = numel;
    TERN_TRY(rd(c, 4, &v, what));
    t->type = (uint32_t)v;
    size_t block, bytes;
    if (!tern_ggml_type_size(t->type, &block, &bytes))
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has unknown type %u", L, nm, t->type);
    if (t->ne[0] % block)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' of type %s has rows of %llu elements, not a multiple of its block size %zu", L, nm,
                        tern_ggml_type_name(t->type), (unsigned long long)t->ne[0], block);
    if (numel / block > SIZE_MAX / bytes) return tern_err(TERN_EFORMAT, "%s: tensor '%s' is too large to address", L, nm);
    t->nbytes = (size_t)(numel / block) * bytes;
    return rd(c, 8, &t->offset, what);
}

/* Magic, version and the two counts, bounded by what the rest of the file could hold before
 * anything is allocated: a key takes at least 8+1+4+1 bytes and a tensor description 8+1+4+4+8. */
static tern_status parse_header(tern_gguf *g, cursor *c, uint64_t *n_t, uint64_t *n_kv) {
    const char *L = g->label;
    if (g->size < 4 || memcmp(g->buf, "GGUF", 4)) {
        if (g->size < 4) return tern_err(TERN_EFORMAT, "%s: not a GGUF file: %zu bytes, shorter than the magic", L, g->size);
        char m[5];
        for (int i = 0; i < 4; i++) m[i] = (g->buf[i] >= 0x20 && g->buf[i] < 0x7f) ? (char)g->buf[i] : '?';
        m[4] = 0;
        return tern_err(TERN_EFORMAT, "%s: not a GGUF file: magic '%s', expected 'GGUF'", L, m);
    }
    c->off = 4;
    uint64_t v = 0;
    TERN_TRY(rd(c, 4, &v, "the header"));
    g->version = (uint32_t)v;
    if ((g->version & 0xffff) == 0 && g->version != 0)
        return tern_err(TERN_EFORMAT, "%s: version field reads %u: a big-endian GGUF file? tern reads little-endian files only", L,
                        g->version);
    if (g->version < 2 || g->version > TERN_GGUF_VERSION)
        return tern_err(TERN_EFORMAT, "%s: GGUF version %u is not supported (tern reads versions 2 and 3)", L, g->version);
    TERN_TRY(rd(c, 8, n_t, "the header"));
    TERN_TRY(rd(c, 8, n_kv, "the header"));
    size_t left = g->size - c->off;
    if (*n_kv > left / 14)
        return tern_err(TERN_EFORMAT, "%s: the header claims %llu keys, more than the remaining %zu bytes can hold", L,
                        (unsigned long long)*n_kv, left);
    if (*n_t > left / 25)
        return tern_err(TERN_EFORMAT, "%s: the header claims %llu tensors, more than the remaining %zu bytes can hold", L,
                        (unsigned long long)*n_t, left);
    return TERN_OK;
}

/* Duplicate keys and tensor names, found by sorting pointers (a quadratic scan could be made to
 * hang). */
static tern_status check_unique(tern_gguf *g, int keys, int tensors) {
    size_t most = g->n_kv > g->n_t ? g->n_kv : g->n_t;
    const void **sorted = malloc(most * sizeof *sorted + 1);
    if (!sorted) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = TERN_OK;
    size_t nk = keys ? g->n_kv : 0, nt = tensors ? g->n_t : 0;
    for (size_t i = 0; i < nk; i++) sorted[i] = &g->kv[i];
    qsort(sorted, nk, sizeof *sorted, cmp_kv_ptr);
    for (size_t i = 1; st == TERN_OK && i < nk; i++) {
        const tern_gguf_kv *a = sorted[i - 1], *b = sorted[i];
        char s[64];
        if (!cmp_str(&a->key, &b->key)) st = tern_err(TERN_EFORMAT, "%s: duplicate key '%s'", g->label, show(&a->key, s));
    }
    for (size_t i = 0; i < nt; i++) sorted[i] = &g->t[i];
    qsort(sorted, nt, sizeof *sorted, cmp_tensor_ptr);
    for (size_t i = 1; st == TERN_OK && i < nt; i++)
        if (!strcmp(((const tern_gguf_tensor *)sorted[i - 1])->name, ((const tern_gguf_tensor *)sorted[i])->name))
            st = tern_err(TERN_EFORMAT, "%s: duplicate tensor name '%s'", g->label, ((const tern_gguf_tensor *)sorted[i])->name);
    free(sorted);
    return st;
}

static tern_status read_alignment(tern_gguf *g) {
    g->alignment = TERN_GGUF_DEFAULT_ALIGNMENT;
    const tern_gguf_kv *al = tern_gguf_find_kv(g, "general.alignment");
    if (!al) return TERN_OK;
    if (al->type != TERN_GGUF_U32)
        return tern_err(TERN_EFORMAT, "%s: key 'general.alignment' is %s, expected u32", g->label, tern_gguf_vtype_name(al->type));
    uint32_t a = (uint32_t)le(al->data, 4);
    if (a == 0 || (a & (a - 1))) return tern_err(TERN_EFORMAT, "%s: general.alignment %u is not a power of two", g->label, a);
    g->alignment = a;
    return TERN_OK;
}

/* The data section starts at the next aligned offset after the tensor infos (at end); tensors
 * follow each other in order, each padded to the alignment, as ggml's reader requires. */
static tern_status place_tensors(tern_gguf *g, size_t end) {
    const char *L = g->label;
    size_t A = g->alignment, pad = (A - end % A) % A;
    g->data_offset = end + pad;
    if (g->n_t > 0 && pad > g->size - end)
        return tern_err(TERN_EFORMAT, "%s: truncated: the data section would start at byte %zu but the file has %zu bytes", L,
                        g->data_offset, g->size);
    uint64_t expect = 0;
    for (size_t i = 0; i < g->n_t; i++) {
        tern_gguf_tensor *t = &g->t[i];
        if (t->offset % A)
            return tern_err(TERN_EFORMAT, "%s: tensor '%s' has offset %llu, not a multiple of the alignment %zu", L, t->name,
                            (unsigned long long)t->offset, A);
        if (t->offset != expect)
            return tern_err(TERN_EFORMAT, "%s: tensor '%s' has offset %llu, expected %llu (tensors follow each other in order)", L,
                            t->name, (unsigned long long)t->offset, (unsigned long long)expect);
        size_t room = g->size - g->data_offset;
        if (t->offset > room || t->nbytes > room - t->offset)
            return tern_err(TERN_EFORMAT,
                            "%s: truncated: tensor '%s' (%zu bytes at offset %llu of the data section) runs past the end of the file (%zu bytes)",
                            L, t->name, t->nbytes, (unsigned long long)t->offset, g->size);
        t->data = g->buf + g->data_offset + t->offset;
        /* next offset: this end rounded up to A; cannot overflow as it stays within the file plus A */
        expect = t->offset + t->nbytes + (A - t->nbytes % A) % A;
    }
    return TERN_OK;
}

static tern_status parse(tern_gguf *g) {
    cursor c = {g->buf, g->size, 0, g->label};
    uint64_t n_t = 0, n_kv = 0;
    TERN_TRY(parse_header(g, &c, &n_t, &n_kv));
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->t = calloc(n_t ? (size_t)n_t : 1, sizeof *g->t);
    if (!g->kv || !g->t)
        return tern_err(TERN_ENOMEM, "%s: out of memory for %llu keys and %llu tensors", g->label, (unsigned long long)n_kv,
                        (unsigned long long)n_t);
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = (size_t)i + 1; /* so that free releases what this key allocated */
        TERN_TRY(parse_kv(&c, &g->kv[i], i));
    }
    /* a duplicate key or a bad alignment is reported before a bad tensor info */
    TERN_TRY(check_unique(g, 1, 0));
    TERN_TRY(read_alignment(g));
    tern_status st = TERN_OK;
    for (uint64_t i = 0; st == TERN_OK && i < n_t; i++) st = parse_tensor_info(&c, &g->t[i], i);
    g->n_t = (size_t)n_t;
    TERN_TRY(st);
    TERN_TRY(check_unique(g, 0, 1));
    return place_tensors(g, c.off);
}

static tern_status make(tern_gguf **out, const char *label) {
    *out = calloc(1, sizeof **out);
    if (!*out || !((*out)->label = strdup(label ? label : "gguf"))) {
        free(*out);
        *out = NULL;
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    return TERN_OK;
}

tern_status tern_gguf_from_buffer(tern_gguf **out, const uint8_t *p, size_t n, const char *label) {
    tern_gguf *g;
    TERN_TRY(make(&g, label));
    g->buf = p;
    g->size = n;
    tern_status st = parse(g);
    if (st != TERN_OK) {
        tern_gguf_free(g);
        g = NULL;
    }
    *out = g;
    return st;
}

tern_status tern_gguf_open(tern_gguf **out, const char *path) {
    *out = NULL;
    tern_gguf *g;
    TERN_TRY(make(&g, path));
    tern_status st = tern_map_file(&g->map, path);
    if (st == TERN_OK) {
        g->buf = g->map.data;
        g->size = g->map.size;
        st = parse(g);
    }
    if (st != TERN_OK) {
        tern_gguf_free(g);
        return st;
    }
    *out = g;
    return TERN_OK;
}

const char *tern_gguf_label(const tern_gguf *g) { return g->label; }
uint32_t tern_gguf_version(const tern_gguf *g) { return g->version; }
size_t tern_gguf_alignment(const tern_gguf *g) { return g->alignment; }
size_t tern_gguf_data_offset(const tern_gguf *g) { return g->data_offset; }
size_t tern_gguf_kv_count(const tern_gguf *g) { return g->n_kv; }
const tern_gguf_kv *tern_gguf_kv_at(const tern_gguf *g, size_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }
size_t tern_gguf_tensor_count(const tern_gguf *g) { return g->n_t; }
const tern_gguf_tensor *tern_gguf_tensor_at(const tern_gguf *g, size_t i) { return i < g->n_t ? &g->t[i] : NULL; }

const tern_gguf_kv *tern_gguf_find_kv(const tern_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (str_eq(&g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const tern_gguf_tensor *tern_gguf_find_tensor(const tern_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

static tern_status get_typed(const tern_gguf *g, const char *key, uint32_t type, const tern_gguf_kv **out) {
    *out = NULL;
    const tern_gguf_kv *kv = tern_gguf_find_kv(g, key);
    if (!kv) return tern_err(TERN_ENOTFOUND, "%s: missing key '%s'", g->label, key);
    if (kv->type != type)
        return tern_err(TERN_EFORMAT, "%s: key '%s' is %s, expected %s", g->label, key, tern_gguf_vtype_name(kv->type),
                        tern_gguf_vtype_name(type));
    *out = kv;
    return TERN_OK;
}

tern_status tern_gguf_get_u32(const tern_gguf *g, const char *key, uint32_t *out) {
    const tern_gguf_kv *kv;
    TERN_TRY(get_typed(g, key, TERN_GGUF_U32, &kv));
    *out = (uint32_t)le(kv->data, 4);
    return TERN_OK;
}

tern_status tern_gguf_get_f32(const tern_gguf *g, const char *key, float *out) {
    const tern_gguf_kv *kv;
    TERN_TRY(get_typed(g, key, TERN_GGUF_F32, &kv));
    uint32_t b = (uint32_t)le(kv->data, 4);
    memcpy(out, &b, 4);
    return TERN_OK;
}

tern_status tern_gguf_get_str(const tern_gguf *g, const char *key, tern_gguf_str *out) {
    const tern_gguf_kv *kv;
    TERN_TRY(get_typed(g, key, TERN_GGUF_STRING, &kv));
    *out = kv->strs[0];
    return TERN_OK;
}

tern_status tern_gguf_get_arr(const tern_gguf *g, const char *key, uint32_t elem_type, const tern_gguf_kv **out) {
    const tern_gguf_kv *kv;
    TERN_TRY(get_typed(g, key, TERN_GGUF_ARRAY, &kv));
    if (kv->elem_type != elem_type)
        return tern_err(TERN_EFORMAT, "%s: key '%s' is an array of %s, expected an array of %s", g->label, key,
                        tern_gguf_vtype_name(kv->elem_type), tern_gguf_vtype_name(elem_type));
    *out = kv;
    return TERN_OK;
}

tern_status tern_gguf_tensor_to_f32(const tern_gguf *g, const tern_gguf_tensor *t, float *dst) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->type) {
    case TERN_GGML_F32:
        memcpy(dst, p, n * sizeof(float)); /* GGUF and the host are little-endian */
        return TERN_OK;
    case TERN_GGML_F16:
        for (size_t i = 0; i < n; i++) dst[i] = tern_f16_to_f32((uint16_t)le(p + 2 * i, 2));
        return TERN_OK;
    case TERN_GGML_Q8_0:
        for (size_t b = 0; b < n / 32; b++, p += 34) {
            float d = tern_f16_to_f32((uint16_t)le(p, 2));
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)(int8_t)p[2 + j] * d;
        }
        return TERN_OK;
    default:
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' is %s; tern converts only f32, f16 and q8_0", g->label, t->name,
                        tern_ggml_type_name(t->type));
    }
}

/* ---- writing ---- */

typedef struct {
    char *key;
    uint32_t type, elem;
    uint64_t n;
    uint8_t *data; /* numeric bytes, little-endian */
    char **strs;
    size_t *lens;
} wkv;

typedef struct {
    char name[TERN_GGUF_MAX_NAME];
    uint32_t type, n_dims;
    uint64_t ne[TERN_GGUF_MAX_DIMS];
    size_t nbytes;
    const void *data;
} wtensor;

struct tern_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint32_t alignment;
    tern_gguf_fill_fn fill;
    void *fill_ctx;
};

tern_status tern_gguf_writer_init(tern_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return tern_err(TERN_ENOMEM, "out of memory");
    (*out)->alignment = TERN_GGUF_DEFAULT_ALIGNMENT;
    return TERN_OK;
}

static void wkv_free(wkv *k) {
    free(k->key);
    free(k->data);
    if (k->strs)
        for (uint64_t i = 0; i < k->n; i++) free(k->strs[i]);
    free(k->strs);
    free(k->lens);
}

void tern_gguf_writer_free(tern_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) wkv_free(&w->kv[i]);
    free(w->kv);
    free(w->t);
    free(w);
}

static tern_status new_kv(tern_gguf_writer *w, const char *key, wkv **out) {
    if (!key[0]) return tern_err(TERN_EINVAL, "gguf writer: empty key");
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) return tern_err(TERN_EINVAL, "gguf writer: duplicate key '%s'", key);
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *k = realloc(w->kv, cap * sizeof *k);
        if (!k) return tern_err(TERN_ENOMEM, "out of memory");
        w->kv = k;
        w->cap_kv = cap;
    }
    wkv *k = &w->kv[w->n_kv];
    memset(k, 0, sizeof *k);
    if (!(k->key = strdup(key))) return tern_err(TERN_ENOMEM, "out of memory");
    w->n_kv++;
    *out = k;
    return TERN_OK;
}

static tern_status add_scalar(tern_gguf_writer *w, const char *key, uint32_t type, uint32_t bits) {
    wkv *k;
    TERN_TRY(new_kv(w, key, &k));
    k->type = type;
    k->n = 1;
    if (!(k->data = malloc(4))) return tern_err(TERN_ENOMEM, "out of memory");
    for (int i = 0; i < 4; i++) k->data[i] = (uint8_t)(bits >> (8 * i));
    return TERN_OK;
}

tern_status tern_gguf_add_u32(tern_gguf_writer *w, const char *key, uint32_t v) { return add_scalar(w, key, TERN_GGUF_U32, v); }

tern_status tern_gguf_add_f32(tern_gguf_writer *w, const char *key, float v) {
    uint32_t b;
    memcpy(&b, &v, 4);
    return add_scalar(w, key, TERN_GGUF_F32, b);
}

static tern_status set_strs(wkv *k, const char *const *v, const size_t *len, size_t n) {
    k->n = n;
    k->strs = calloc(n ? n : 1, sizeof *k->strs);
    k->lens = calloc(n ? n : 1, sizeof *k->lens);
    if (!k->strs || !k->lens) return tern_err(TERN_ENOMEM, "out of memory for %zu strings", n);
    for (size_t i = 0; i < n; i++) {
        if (!(k->strs[i] = malloc(len[i] + 1))) return tern_err(TERN_ENOMEM, "out of memory");
        memcpy(k->strs[i], v[i], len[i]);
        k->lens[i] = len[i];
    }
    return TERN_OK;
}

tern_status tern_gguf_add_str(tern_gguf_writer *w, const char *key, const char *v) {
    wkv *k;
    TERN_TRY(new_kv(w, key, &k));
    k->type = TERN_GGUF_STRING;
    size_t len = strlen(v);
    return set_strs(k, &v, &len, 1);
}

tern_status tern_gguf_add_str_arr(tern_gguf_writer *w, const char *key, const char *const *v, const size_t *len, size_t n) {
    wkv *k;
    TERN_TRY(new_kv(w, key, &k));
    k->type = TERN_GGUF_ARRAY;
    k->elem = TERN_GGUF_STRING;
    return set_strs(k, v, len, n);
}

tern_status tern_gguf_add_i32_arr(tern_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    wkv *k;
    TERN_TRY(new_kv(w, key, &k));
    k->type = TERN_GGUF_ARRAY;
    k->elem = TERN_GGUF_I32;
    k->n = n;
    if (!(k->data = malloc(4 * n + 1))) return tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) k->data[4 * i + b] = (uint8_t)((uint32_t)v[i] >> (8 * b));
    return TERN_OK;
}

tern_status tern_gguf_set_alignment(tern_gguf_writer *w, uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)))
        return tern_err(TERN_EINVAL, "gguf writer: alignment %u is not a power of two", alignment);
    w->alignment = alignment;
    return TERN_OK;
}

void tern_gguf_set_fill(tern_gguf_writer *w, tern_gguf_fill_fn fill, void *ctx) {
    w->fill = fill;
    w->fill_ctx = ctx;
}

tern_status tern_gguf_add_tensor(tern_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                 const void *data) {
    size_t nl = strlen(name), block, bytes;
    if (nl == 0 || nl >= TERN_GGUF_MAX_NAME)
        return tern_err(TERN_EINVAL, "gguf writer: tensor name '%s' must be 1 to %d bytes", name, TERN_GGUF_MAX_NAME - 1);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return tern_err(TERN_EINVAL, "gguf writer: duplicate tensor '%s'", name);
    if (n_dims < 1 || n_dims > TERN_GGUF_MAX_DIMS) return tern_err(TERN_EINVAL, "gguf writer: tensor '%s' has %u dimensions", name, n_dims);
    if (!tern_ggml_type_size(type, &block, &bytes)) return tern_err(TERN_EINVAL, "gguf writer: tensor '%s' has unknown type %u", name, type);
    size_t numel = 1;
    for (uint32_t j = 0; j < n_dims; j++)
        if (ne[j] == 0 || ne[j] > SIZE_MAX || !tern_mul_size(numel, (size_t)ne[j], &numel))
            return tern_err(TERN_EINVAL, "gguf writer: tensor '%s' has a bad dimension", name);
    if (ne[0] % block)
        return tern_err(TERN_EINVAL, "gguf writer: tensor '%s': rows of %llu elements are not a multiple of the %s block size %zu", name,
                        (unsigned long long)ne[0], tern_ggml_type_name(type), block);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 32;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return tern_err(TERN_ENOMEM, "out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, nl + 1);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t j = 0; j < TERN_GGUF_MAX_DIMS; j++) t->ne[j] = j < n_dims ? ne[j] : 1;
    t->nbytes = numel / block * bytes;
    t->data = data;
    return TERN_OK;
}

static void put_str(tern_buf *b, const char *s, size_t n) {
    tern_buf_put_le(b, n, 8);
    tern_buf_put(b, s, n);
}

static size_t pad_to(size_t n, size_t a) { return (a - n % a) % a; }

/* Header, metadata and tensor descriptions, padded to the alignment. */
static tern_status build_header(tern_gguf_writer *w, tern_buf *b) {
    int write_align = w->alignment != TERN_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, "general.alignment")) return tern_err(TERN_EINVAL, "gguf writer: set general.alignment with tern_gguf_set_alignment");
    tern_buf_put(b, "GGUF", 4);
    tern_buf_put_le(b, TERN_GGUF_VERSION, 4);
    tern_buf_put_le(b, w->n_t, 8);
    tern_buf_put_le(b, w->n_kv + (size_t)write_align, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *k = &w->kv[i];
        put_str(b, k->key, strlen(k->key));
        tern_buf_put_le(b, k->type, 4);
        uint32_t et = k->type;
        if (k->type == TERN_GGUF_ARRAY) {
            tern_buf_put_le(b, k->elem, 4);
            tern_buf_put_le(b, k->n, 8);
            et = k->elem;
        }
        if (et == TERN_GGUF_STRING)
            for (uint64_t j = 0; j < k->n; j++) put_str(b, k->strs[j], k->lens[j]);
        else
            tern_buf_put(b, k->data, (size_t)k->n * vtype_sizes[et]);
    }
    if (write_align) {
        put_str(b, "general.alignment", 17);
        tern_buf_put_le(b, TERN_GGUF_U32, 4);
        tern_buf_put_le(b, w->alignment, 4);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(b, t->name, strlen(t->name));
        tern_buf_put_le(b, t->n_dims, 4);
        for (uint32_t j = 0; j < t->n_dims; j++) tern_buf_put_le(b, t->ne[j], 8);
        tern_buf_put_le(b, t->type, 4);
        tern_buf_put_le(b, off, 8);
        off += t->nbytes + pad_to(t->nbytes, w->alignment);
    }
    static const uint8_t zeros[256];
    for (size_t k = pad_to(b->n, w->alignment); k && !b->oom; k = pad_to(b->n, w->alignment)) tern_buf_put(b, zeros, k < 256 ? k : 256);
    if (b->oom) return tern_err(TERN_ENOMEM, "out of memory for the GGUF header");
    return TERN_OK;
}

/* Emits the tensors' bytes, each followed by padding, to a file or a buffer. */
static tern_status emit_data(tern_gguf_writer *w, tern_afile *af, tern_buf *b) {
    size_t maxn = 0;
    for (size_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data && w->t[i].nbytes > maxn) maxn = w->t[i].nbytes;
    uint8_t *scratch = NULL;
    if (maxn) {
        if (!w->fill) return tern_err(TERN_EINVAL, "gguf writer: a tensor has no data and no fill function was set");
        if (!(scratch = malloc(maxn))) return tern_err(TERN_ENOMEM, "out of memory for a %zu-byte tensor", maxn);
    }
    static const uint8_t zeros[256];
    tern_status st = TERN_OK;
    for (size_t i = 0; st == TERN_OK && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        const void *p = t->data;
        if (!p) {
            st = w->fill(w->fill_ctx, i, scratch, t->nbytes);
            p = scratch;
        }
        size_t pad = pad_to(t->nbytes, w->alignment);
        if (st != TERN_OK) break;
        if (af) {
            st = tern_afile_write(af, p, t->nbytes);
            for (size_t k = pad; st == TERN_OK && k; k -= k < 256 ? k : 256) st = tern_afile_write(af, zeros, k < 256 ? k : 256);
        } else {
            tern_buf_put(b, p, t->nbytes);
            for (size_t k = pad; k; k -= k < 256 ? k : 256) tern_buf_put(b, zeros, k < 256 ? k : 256);
            if (b->oom) st = tern_err(TERN_ENOMEM, "out of memory serialising GGUF");
        }
    }
    free(scratch);
    return st;
}

tern_status tern_gguf_write(tern_gguf_writer *w, const char *path) {
    tern_buf b = {0};
    tern_status st = build_header(w, &b);
    tern_afile af;
    if (st == TERN_OK) st = tern_afile_open(&af, path);
    if (st != TERN_OK) {
        free(b.p);
        return st;
    }
    st = tern_afile_write(&af, b.p, b.n);
    free(b.p);
    if (st == TERN_OK) st = emit_data(w, &af, NULL);
    if (st != TERN_OK) {
        tern_afile_abort(&af);
        return st;
    }
    return tern_afile_commit(&af);
}

tern_status tern_gguf_serialize(tern_gguf_writer *w, uint8_t **out, size_t *n) {
    tern_buf b = {0};
    tern_status st = build_header(w, &b);
    if (st == TERN_OK) st = emit_data(w, NULL, &b);
    if (st != TERN_OK) {
        free(b.p);
        return st;
    }
    *out = b.p;
    *n = b.n;
    return TERN_OK;
}
