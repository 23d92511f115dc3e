/* libFuzzer target: safetensors (checkpoints, exports, Hugging Face weights) through
 * tern_st_from_buffer. Not a test of the writer's layout, only that whatever the reader accepts
 * is safe to use and survives a round trip through the writer unchanged.
 * Format: huggingface/safetensors' README; docs/FORMATS.md. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *label = "fuzz.safetensors";
    tern_safetensors *st = NULL;
    tern_err_clear();
    tern_status rc = tern_st_from_buffer(&st, data, size, label);
    fuzz_check_refusal(rc, label);
    if (rc != TERN_OK) {
        FUZZ_REQUIRE(st == NULL, "a refused file still returned a handle");
        return 0;
    }
    /* Everything an accepted file exposes must lie inside the buffer: touch every byte of every
     * tensor, and convert each floating-point one as a loader would. */
    size_t n = tern_st_count(st);
    tern_st_writer *w = NULL;
    FUZZ_REQUIRE(tern_st_writer_init(&w) == TERN_OK, "writer: %s", tern_errmsg());
    for (size_t i = 0; i < n; i++) {
        const tern_st_entry *e = tern_st_entry_at(st, i);
        FUZZ_REQUIRE(e && e->end >= e->begin && e->end <= size, "entry %zu out of range", i);
        FUZZ_REQUIRE(tern_st_find(st, e->name) == e, "names are not unique: '%s'", e->name);
        const uint8_t *p = tern_st_data(st, e);
        size_t nb = e->end - e->begin;
        FUZZ_REQUIRE(nb == e->numel * tern_dtype_size(e->dtype), "tensor '%s': %zu bytes for %zu elements", e->name, nb, e->numel);
        unsigned sum = 0;
        for (size_t k = 0; k < nb; k++) sum += p[k];
        (void)sum;
        if (e->numel <= (1u << 20)) {
            float *f = malloc(e->numel ? e->numel * sizeof(float) : 1);
            FUZZ_REQUIRE(f, "malloc");
            tern_status r = tern_st_read_f32(st, e->name, f, e->ndim, e->shape);
            int is_float = e->dtype == TERN_DT_F32 || e->dtype == TERN_DT_F16 || e->dtype == TERN_DT_BF16 || e->dtype == TERN_DT_F64;
            FUZZ_REQUIRE((r == TERN_OK) == is_float, "tensor '%s' of dtype %s: read_f32 gave %d", e->name,
                         tern_dtype_name(e->dtype), (int)r);
            free(f);
        }
        FUZZ_REQUIRE(tern_st_add(w, e->name, e->dtype, e->ndim, e->shape, p) == TERN_OK, "add: %s", tern_errmsg());
    }
    (void)tern_st_meta(st, "format");
    /* Round trip: what the writer makes of the accepted tensors reads back the same. */
    uint8_t *img = NULL;
    size_t img_n = 0;
    FUZZ_REQUIRE(tern_st_serialize(w, &img, &img_n) == TERN_OK, "serialize: %s", tern_errmsg());
    tern_safetensors *st2 = NULL;
    rc = tern_st_from_buffer(&st2, img, img_n, "round trip");
    FUZZ_REQUIRE(rc == TERN_OK, "the writer's image of an accepted file is refused: %s", tern_errmsg());
    FUZZ_REQUIRE(tern_st_count(st2) == n, "round trip: %zu tensors, expected %zu", tern_st_count(st2), n);
    for (size_t i = 0; i < n; i++) {
        const tern_st_entry *a = tern_st_entry_at(st, i), *b = tern_st_find(st2, a->name);
        FUZZ_REQUIRE(b && b->dtype == a->dtype && b->ndim == a->ndim && b->numel == a->numel, "round trip changed '%s'", a->name);
        for (int d = 0; d < a->ndim; d++) FUZZ_REQUIRE(a->shape[d] == b->shape[d], "round trip changed the shape of '%s'", a->name);
        FUZZ_REQUIRE(!memcmp(tern_st_data(st, a), tern_st_data(st2, b), a->end - a->begin), "round trip changed the data of '%s'", a->name);
    }
    tern_st_free(st2);
    free(img);
    tern_st_writer_free(w);
    tern_st_free(st);
    return 0;
}
