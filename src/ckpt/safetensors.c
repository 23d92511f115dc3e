/* safetensors: a strict reader (every field, size and offset checked before use, so any file, by
 * mistake or by attack, gives a message rather than an out-of-bounds read) and an atomic writer.
 * Follows the specification in huggingface/safetensors' README. */
#include "tern/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER (100u * 1024 * 1024) /* the reference implementation's limit */

struct tern_safetensors {
    tern_map map; /* when opened from a path */
    const uint8_t *buf;
    size_t size;
    const uint8_t *data; /* start of the byte buffer */
    size_t data_size;
    tern_st_entry *entries;
    size_t n;
    cJSON *meta;
    char *label;
};

static const struct {
    const char *name;
    tern_dtype dt;
    size_t size;
} dtypes[] = {{"F32", TERN_DT_F32, 4}, {"F16", TERN_DT_F16, 2}, {"BF16", TERN_DT_BF16, 2}, {"I32", TERN_DT_I32, 4},
              {"I64", TERN_DT_I64, 8}, {"U8", TERN_DT_U8, 1},   {"F64", TERN_DT_F64, 8},  {"BOOL", TERN_DT_BOOL, 1},
              {"I8", TERN_DT_I8, 1},   {"I16", TERN_DT_I16, 2}, {"U16", TERN_DT_U16, 2}, {"U32", TERN_DT_U32, 4},
              {"U64", TERN_DT_U64, 8}};
/* Every dtype of the safetensors specification but F8 can be read (BOOL appears in older
 * Hugging Face GPT-2 files, as the attn.bias mask); tensors tern loads as parameters must be
 * floating-point (tern_st_read_f32 says so otherwise). */

size_t tern_dtype_size(tern_dtype dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dt == dt) return dtypes[i].size;
    return 0;
}

const char *tern_dtype_name(tern_dtype dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dt == dt) return dtypes[i].name;
    return "?";
}

void tern_st_free(tern_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->entries[i].name);
    free(st->entries);
    cJSON_Delete(st->meta);
    tern_unmap(&st->map);
    free(st->label);
    free(st);
}

static int cmp_begin(const void *a, const void *b) {
    const tern_st_entry *x = *(tern_st_entry *const *)a, *y = *(tern_st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* The 8-byte header length and the JSON header it frames; sets data and data_size. */
static tern_status parse_header(tern_safetensors *st, cJSON **root) {
    const char *L = st->label;
    if (st->size < 8) return tern_err(TERN_EFORMAT, "%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length", L, st->size);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | st->buf[i];
    if (hn > ST_MAX_HEADER) return tern_err(TERN_EFORMAT, "%s: safetensors header length %llu exceeds the 100 MB limit", L, (unsigned long long)hn);
    if (hn > st->size - 8)
        return tern_err(TERN_EFORMAT, "%s: safetensors header length %llu runs past the end of the file (%zu bytes)", L,
                        (unsigned long long)hn, st->size);
    if (hn < 2 || st->buf[8] != '{') return tern_err(TERN_EFORMAT, "%s: safetensors header is not a JSON object", L);
    *root = cJSON_ParseWithLength((const char *)st->buf + 8, (size_t)hn);
    if (!*root || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return tern_err(TERN_EFORMAT, "%s: safetensors header is not valid JSON", L);
    }
    st->data = st->buf + 8 + hn;
    st->data_size = st->size - 8 - (size_t)hn;
    return TERN_OK;
}

/* __metadata__, if present: an object of strings, detached from root into st->meta. */
static tern_status parse_metadata(tern_safetensors *st, cJSON *root) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    if (!it) return TERN_OK;
    if (!cJSON_IsObject(it)) return tern_err(TERN_EFORMAT, "%s: __metadata__ is not an object", st->label);
    for (cJSON *kv = it->child; kv; kv = kv->next)
        if (!cJSON_IsString(kv)) return tern_err(TERN_EFORMAT, "%s: __metadata__ value '%s' is not a string", st->label, kv->string);
    st->meta = cJSON_DetachItemViaPointer(root, it);
    return TERN_OK;
}

/* One tensor's entry: dtype, shape (no overflow) and data_offsets inside the data buffer and
 * exactly as long as shape and dtype need. */
static tern_status parse_entry(tern_safetensors *st, const cJSON *it, tern_st_entry *e) {
    const char *L = st->label, *name = it->string;
    for (size_t j = 0; j < st->n; j++)
        if (!strcmp(st->entries[j].name, name)) return tern_err(TERN_EFORMAT, "%s: tensor '%s' appears twice", L, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' lacks a dtype, shape or two data_offsets", L, name);
    size_t k;
    for (k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
        if (!strcmp(dt->valuestring, dtypes[k].name)) break;
    if (k == sizeof dtypes / sizeof dtypes[0])
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has unsupported dtype '%s'", L, name, dt->valuestring);
    e->dtype = dtypes[k].dt;
    int nd = cJSON_GetArraySize(shape);
    if (nd > TERN_ST_MAX_DIMS)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has %d dimensions (at most %d supported)", L, name, nd, TERN_ST_MAX_DIMS);
    e->ndim = nd;
    size_t numel = 1;
    int d = 0;
    for (const cJSON *x = shape->child; x; x = x->next, d++) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9.0e15 || x->valuedouble != (double)(uint64_t)x->valuedouble)
            return tern_err(TERN_EFORMAT, "%s: tensor '%s' has a bad dimension in its shape", L, name);
        e->shape[d] = (size_t)x->valuedouble;
        if (!tern_mul_size(numel, e->shape[d], &numel)) return tern_err(TERN_EFORMAT, "%s: tensor '%s' shape overflows", L, name);
    }
    e->numel = numel;
    const cJSON *ob = cJSON_GetArrayItem(offs, 0), *oe = cJSON_GetArrayItem(offs, 1);
    double b = ob->valuedouble, en = oe->valuedouble;
    if (!cJSON_IsNumber(ob) || !cJSON_IsNumber(oe) || b < 0 || en < b || en > (double)st->data_size || b != (double)(uint64_t)b ||
        en != (double)(uint64_t)en)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has data_offsets outside the %zu-byte data buffer", L, name, st->data_size);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    size_t bytes;
    if (!tern_mul_size(numel, dtypes[k].size, &bytes) || bytes != e->end - e->begin)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has %zu bytes of data but its shape and dtype need %zu", L, name, e->end - e->begin,
                        numel * dtypes[k].size);
    e->name = strdup(name);
    return e->name ? TERN_OK : tern_err(TERN_ENOMEM, "%s: out of memory", L);
}

/* The tensors must tile the data buffer: sorted by offset, each begins where the last ended. */
static tern_status check_tiling(tern_safetensors *st, tern_st_entry **order) {
    qsort(order, st->n, sizeof *order, cmp_begin);
    size_t pos = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (order[i]->begin != pos)
            return tern_err(TERN_EFORMAT, "%s: tensor '%s' starts at byte %zu of the data buffer, expected %zu (gap or overlap)", st->label,
                            order[i]->name, order[i]->begin, pos);
        pos = order[i]->end;
    }
    if (pos != st->data_size)
        return tern_err(TERN_EFORMAT, "%s: the tensors cover %zu bytes but the data buffer has %zu", st->label, pos, st->data_size);
    return TERN_OK;
}

static tern_status parse(tern_safetensors *st) {
    cJSON *root = NULL;
    TERN_TRY(parse_header(st, &root));
    tern_status rc = parse_metadata(st, root);
    size_t count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    st->entries = calloc(count ? count : 1, sizeof(tern_st_entry));
    tern_st_entry **order = calloc(count ? count : 1, sizeof(tern_st_entry *));
    if (rc == TERN_OK && (!st->entries || !order)) rc = tern_err(TERN_ENOMEM, "%s: out of memory for %zu tensor entries", st->label, count);
    for (cJSON *it = root->child; rc == TERN_OK && it; it = it->next) {
        rc = parse_entry(st, it, &st->entries[st->n]);
        if (rc == TERN_OK) order[st->n] = &st->entries[st->n], st->n++;
    }
    if (rc == TERN_OK) rc = check_tiling(st, order);
    free(order);
    cJSON_Delete(root);
    return rc;
}

tern_status tern_st_from_buffer(tern_safetensors **out, const uint8_t *p, size_t n, const char *label) {
    *out = NULL;
    tern_safetensors *st = calloc(1, sizeof *st);
    if (!st) return tern_err(TERN_ENOMEM, "out of memory");
    st->label = strdup(label ? label : "safetensors buffer");
    st->buf = p;
    st->size = n;
    tern_status rc = st->label ? parse(st) : tern_err(TERN_ENOMEM, "out of memory");
    if (rc != TERN_OK) {
        tern_st_free(st);
        return rc;
    }
    *out = st;
    return TERN_OK;
}

tern_status tern_st_open(tern_safetensors **out, const char *path) {
    *out = NULL;
    tern_map m;
    TERN_TRY(tern_map_file(&m, path));
    tern_safetensors *st;
    tern_status rc = tern_st_from_buffer(&st, m.data, m.size, path);
    if (rc != TERN_OK) {
        tern_unmap(&m);
        return rc;
    }
    st->map = m;
    *out = st;
    return TERN_OK;
}

size_t tern_st_count(const tern_safetensors *st) { return st->n; }
const tern_st_entry *tern_st_entry_at(const tern_safetensors *st, size_t i) { return i < st->n ? &st->entries[i] : NULL; }
const char *tern_st_label(const tern_safetensors *st) { return st->label; }

const tern_st_entry *tern_st_find(const tern_safetensors *st, const char *name) {
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->entries[i].name, name)) return &st->entries[i];
    return NULL;
}

const void *tern_st_data(const tern_safetensors *st, const tern_st_entry *e) { return st->data + e->begin; }

const char *tern_st_meta(const tern_safetensors *st, const char *key) {
    cJSON *v = st->meta ? cJSON_GetObjectItemCaseSensitive(st->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 1024)) {
                man <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (man & 1023) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

tern_status tern_st_read_f32(const tern_safetensors *st, const char *name, float *dst, int ndim, const size_t *shape) {
    const tern_st_entry *e = tern_st_find(st, name);
    if (!e) return tern_err(TERN_ENOTFOUND, "%s: has no tensor '%s'", st->label, name);
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same) {
        char want[128] = "", got[128] = "";
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? ", %zu" : "%zu", shape[i]);
        for (int i = 0; i < e->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), i ? ", %zu" : "%zu", e->shape[i]);
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has shape [%s], expected [%s]", st->label, name, got, want);
    }
    const uint8_t *src = st->data + e->begin;
    switch (e->dtype) {
    case TERN_DT_F32: memcpy(dst, src, e->numel * 4); break;
    case TERN_DT_F16:
        for (size_t i = 0; i < e->numel; i++) dst[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case TERN_DT_BF16:
        for (size_t i = 0; i < e->numel; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        break;
    case TERN_DT_F64:
        for (size_t i = 0; i < e->numel; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default:
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has dtype %s, expected a floating-point type", st->label, name,
                        tern_dtype_name(e->dtype));
    }
    return TERN_OK;
}

/* ---- writer ---- */

typedef struct {
    char *name;
    tern_dtype dt;
    int ndim;
    size_t shape[TERN_ST_MAX_DIMS];
    const void *data;
    size_t bytes;
    tern_st_fetch fetch; /* when data is NULL */
    void *ctx;
    size_t tag;
} st_item;

struct tern_st_writer {
    st_item *items;
    size_t n, cap;
    cJSON *meta;
};

tern_status tern_st_writer_init(tern_st_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return tern_err(TERN_ENOMEM, "out of memory");
    (*out)->meta = cJSON_CreateObject();
    return TERN_OK;
}

void tern_st_writer_free(tern_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->items[i].name);
    free(w->items);
    cJSON_Delete(w->meta);
    free(w);
}

static tern_status add_item(tern_st_writer *w, const char *name, tern_dtype dt, int ndim, const size_t *shape, st_item **out) {
    TERN_ASSERT(ndim >= 0 && ndim <= TERN_ST_MAX_DIMS);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        st_item *it = realloc(w->items, cap * sizeof *it);
        if (!it) return tern_err(TERN_ENOMEM, "out of memory");
        w->items = it;
        w->cap = cap;
    }
    st_item *it = &w->items[w->n];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    if (!it->name) return tern_err(TERN_ENOMEM, "out of memory");
    it->dt = dt;
    it->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        it->shape[i] = shape[i];
        numel *= shape[i];
    }
    it->bytes = numel * tern_dtype_size(dt);
    w->n++;
    *out = it;
    return TERN_OK;
}

tern_status tern_st_add(tern_st_writer *w, const char *name, tern_dtype dt, int ndim, const size_t *shape,
                        const void *data) {
    st_item *it;
    TERN_TRY(add_item(w, name, dt, ndim, shape, &it));
    it->data = data;
    return TERN_OK;
}

tern_status tern_st_add_fetch(tern_st_writer *w, const char *name, tern_dtype dt, int ndim, const size_t *shape,
                              tern_st_fetch fetch, void *ctx, size_t tag) {
    st_item *it;
    TERN_TRY(add_item(w, name, dt, ndim, shape, &it));
    it->fetch = fetch;
    it->ctx = ctx;
    it->tag = tag;
    return TERN_OK;
}

/* Fetched tensors pass through a buffer of this many bytes. */
#define FETCH_CHUNK ((size_t)4 << 20)

/* Hands an item's bytes to put(ctx, p, n) in order: its data, or fetched chunk by chunk. */
static tern_status item_bytes(const st_item *it, uint8_t *buf, tern_status (*put)(void *ctx, const void *p, size_t n), void *ctx) {
    if (!it->fetch) return put(ctx, it->data, it->bytes);
    for (size_t off = 0; off < it->bytes; off += FETCH_CHUNK) {
        size_t n = it->bytes - off < FETCH_CHUNK ? it->bytes - off : FETCH_CHUNK;
        TERN_TRY(it->fetch(it->ctx, it->tag, off, buf, n));
        TERN_TRY(put(ctx, buf, n));
    }
    return TERN_OK;
}

static int needs_buffer(const tern_st_writer *w) {
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].fetch) return 1;
    return 0;
}

tern_status tern_st_add_meta(tern_st_writer *w, const char *key, const char *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    if (!cJSON_AddStringToObject(w->meta, key, value)) return tern_err(TERN_ENOMEM, "out of memory");
    return TERN_OK;
}

/* The JSON header, padded with spaces to a multiple of 8 so the data is aligned. */
static tern_status build_header(tern_st_writer *w, char **out, size_t *hn, size_t *data_bytes) {
    cJSON *root = cJSON_CreateObject();
    if (cJSON_GetArraySize(w->meta) > 0) cJSON_AddItemReferenceToObject(root, "__metadata__", w->meta);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        st_item *it = &w->items[i];
        cJSON *e = cJSON_AddObjectToObject(root, it->name);
        cJSON_AddStringToObject(e, "dtype", tern_dtype_name(it->dt));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < it->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)it->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + it->bytes)));
        off += it->bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return tern_err(TERN_ENOMEM, "out of memory building a safetensors header");
    size_t n = strlen(json), padded = (n + 7) & ~(size_t)7;
    char *h = malloc(padded);
    if (!h) {
        free(json);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    memcpy(h, json, n);
    memset(h + n, ' ', padded - n);
    free(json);
    *out = h;
    *hn = padded;
    *data_bytes = off;
    return TERN_OK;
}

static void le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static tern_status put_afile(void *ctx, const void *p, size_t n) { return tern_afile_write(ctx, p, n); }

tern_status tern_st_write(tern_st_writer *w, const char *path) {
    char *h;
    size_t hn, db;
    TERN_TRY(build_header(w, &h, &hn, &db));
    uint8_t len[8], *buf = NULL;
    le64(len, hn);
    if (needs_buffer(w) && !(buf = malloc(FETCH_CHUNK))) {
        free(h);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    tern_afile af;
    tern_status rc = tern_afile_open(&af, path);
    if (rc != TERN_OK) {
        free(h);
        free(buf);
        return rc;
    }
    rc = tern_afile_write(&af, len, 8);
    if (rc == TERN_OK) rc = tern_afile_write(&af, h, hn);
    for (size_t i = 0; rc == TERN_OK && i < w->n; i++) rc = item_bytes(&w->items[i], buf, put_afile, &af);
    free(h);
    free(buf);
    if (rc != TERN_OK) {
        tern_afile_abort(&af);
        return rc;
    }
    return tern_afile_commit(&af);
}

typedef struct {
    uint8_t *p;
    size_t off;
} mem_sink;

static tern_status put_mem(void *ctx, const void *p, size_t n) {
    mem_sink *s = ctx;
    if (n) memcpy(s->p + s->off, p, n);
    s->off += n;
    return TERN_OK;
}

tern_status tern_st_serialize(tern_st_writer *w, uint8_t **out, size_t *n) {
    char *h;
    size_t hn, db;
    TERN_TRY(build_header(w, &h, &hn, &db));
    size_t total = 8 + hn + db;
    uint8_t *p = malloc(total), *buf = needs_buffer(w) ? malloc(FETCH_CHUNK) : NULL;
    if (!p || (needs_buffer(w) && !buf)) {
        free(h);
        free(p);
        free(buf);
        return tern_err(TERN_ENOMEM, "out of memory serialising %zu bytes", total);
    }
    le64(p, hn);
    memcpy(p + 8, h, hn);
    free(h);
    mem_sink sink = {p, 8 + hn};
    tern_status st = TERN_OK;
    for (size_t i = 0; st == TERN_OK && i < w->n; i++) st = item_bytes(&w->items[i], buf, put_mem, &sink);
    free(buf);
    if (st != TERN_OK) {
        free(p);
        return st;
    }
    *out = p;
    *n = total;
    return TERN_OK;
}
