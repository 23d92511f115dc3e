/* libFuzzer target: TensorBoard event files (tern tb --dump, tests) through tern_tb_read_buffer.
 * Every item it hands out must lie inside the input, come in record order with a record index
 * below the count it returns, and a refusal must name the file. Then the same input as one
 * metrics.jsonl line through tern_tb_metrics_line, whose records must read back. Format:
 * docs/FORMATS.md "TensorBoard event files"; TensorFlow's record framing and event.proto. */
#include "fuzz.h"

static const char *label = "fuzz.tfevents";

typedef struct seen {
    const uint8_t *p;
    size_t n, items, last_record;
} seen;

static tern_status check_item(void *ctx, const tern_tb_item *it) {
    seen *s = ctx;
    FUZZ_REQUIRE(it->kind <= TERN_TB_OTHER, "kind %d", (int)it->kind);
    FUZZ_REQUIRE(it->record >= s->last_record && it->offset < s->n, "record %zu after %zu, offset %llu", it->record,
                 s->last_record, (unsigned long long)it->offset);
    if (it->text_len) {
        const uint8_t *t = (const uint8_t *)it->text;
        FUZZ_REQUIRE(t >= s->p && t + it->text_len <= s->p + s->n, "text outside the input");
        unsigned sum = 0;
        for (size_t i = 0; i < it->text_len; i++) sum += t[i];
        (void)sum;
    }
    s->last_record = it->record;
    s->items++;
    return TERN_OK;
}

/* The writer's records for one metrics line, in a new file in memory, must read back. */
static void metrics_line(const uint8_t *data, size_t size) {
    tern_tb *tb;
    FUZZ_REQUIRE(tern_tb_open(&tb, fuzz_tmpdir("tfevents")) == TERN_OK, "open: %s", tern_errmsg());
    char path[512];
    snprintf(path, sizeof path, "%s", tern_tb_path(tb));
    char *line = fuzz_dup(data, size);
    size_t k = 0;
    tern_err_clear();
    tern_status st = tern_tb_metrics_line(tb, line, size, 1.0, &k);
    free(line);
    FUZZ_REQUIRE(tern_tb_close(tb) == TERN_OK, "close: %s", tern_errmsg());
    if (st == TERN_OK) {
        tern_map m;
        FUZZ_REQUIRE(tern_map_file(&m, path) == TERN_OK, "map");
        seen s = {m.data, m.size, 0, 0};
        size_t nrec = 0;
        FUZZ_REQUIRE(tern_tb_read_buffer(m.data, m.size, path, check_item, &s, &nrec) == TERN_OK, "tern's own file: %s",
                     tern_errmsg());
        FUZZ_REQUIRE(nrec == k + 1 && s.items == k + 1, "%zu scalars written, %zu records read", k, nrec);
        tern_unmap(&m);
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = (uint8_t *)fuzz_dup(data, size);
    seen s = {copy, size, 0, 0};
    size_t nrec = 0;
    tern_err_clear();
    tern_status st = tern_tb_read_buffer(copy, size, label, check_item, &s, &nrec);
    fuzz_check_refusal(st, label);
    if (st == TERN_OK) FUZZ_REQUIRE(s.items == 0 || s.last_record < nrec, "record %zu of %zu", s.last_record, nrec);
    free(copy);
    if (size && data[0] == '{') metrics_line(data, size);
    return 0;
}
