/* Watching runs (src/watch/): CRC-32C against published check values; the TensorBoard event
 * reader on a file written by TensorBoard's own writer (tests/fixtures/watch/tensorboard.tfevents,
 * made by tools/make_tb_fixture.py), and tern's writer byte for byte against it; round trips,
 * every damaged or cut-off file refused by name; metrics lines to tags; `tern tb` on a run folder;
 * and `tern plot` pictures read back (size, the runs' colours) with every refusal. */
#include "check.h"

#include <cairo/cairo.h>
#include <time.h>
#include <unistd.h>

#include "tern.h"

static void test_crc32c(void) {
    /* the CRC-32C check value, and RFC 3720's iSCSI vectors (B.4) */
    CHECK(tern_crc32c("123456789", 9) == 0xE3069283u, "check value %08x", tern_crc32c("123456789", 9));
    uint8_t z[32] = {0}, f[32], inc[32];
    for (int i = 0; i < 32; i++) f[i] = 0xFF, inc[i] = (uint8_t)i;
    CHECK(tern_crc32c(z, 32) == 0x8A9136AAu, "zeros %08x", tern_crc32c(z, 32));
    CHECK(tern_crc32c(f, 32) == 0x62A8AB43u, "ones %08x", tern_crc32c(f, 32));
    CHECK(tern_crc32c(inc, 32) == 0x46DD794Eu, "incrementing %08x", tern_crc32c(inc, 32));
    CHECK(tern_crc32c("", 0) == 0, "empty");
    /* TensorFlow's mask, from crc32c.h: rotate right by 15 and add a constant */
    CHECK(tern_crc32c_mask(0) == 0xa282ead8u && tern_crc32c_mask(0x12345678u) == (((0x12345678u >> 15) | (0x12345678u << 17)) + 0xa282ead8u),
          "mask");
}

/* The scalars of tools/make_tb_fixture.py, in its order. */
static const struct {
    const char *tag;
    int64_t step;
    double wall;
    float value;
} fixture[] = {
    {"train/loss", 1, 1700000001.25, 10.8309f}, {"train/lr", 1, 1700000001.25, 0.0001f},
    {"train/loss", 2, 1700000002.0, 0.0f},      {"val/loss", 0, 1700000003.5, 5.70161f},
    {"hellaswag/acc_norm", 300, 1700000100.0, 0.2955f}, {"n\xc3\xa9gatif", -3, 1700000101.0, -1e30f},
};
#define NFIX (sizeof fixture / sizeof *fixture)

typedef struct collected {
    tern_tb_item it[64];
    char tags[64][64];
    size_t n;
} collected;

static tern_status collect(void *ctx, const tern_tb_item *it) {
    collected *c = ctx;
    if (c->n < 64) {
        c->it[c->n] = *it;
        snprintf(c->tags[c->n], 64, "%.*s", (int)it->text_len, it->text ? it->text : "");
        c->n++;
    }
    return TERN_OK;
}

static void test_read_tensorboards_file(void) {
    collected c = {0};
    size_t nrec;
    tern_status st = tern_tb_read_file("tests/fixtures/watch/tensorboard.tfevents", collect, &c, &nrec);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    CHECK(nrec == NFIX + 2 && c.n == NFIX + 2, "%zu records, %zu items", nrec, c.n);
    if (c.n != NFIX + 2) return;
    CHECK(c.it[0].kind == TERN_TB_FILE_VERSION && !strcmp(c.tags[0], "brain.Event:2") && c.it[0].wall_time == 1700000000.5,
          "file_version '%s'", c.tags[0]);
    for (size_t i = 0; i < NFIX; i++) {
        const tern_tb_item *it = &c.it[i + 1];
        CHECK(it->kind == TERN_TB_SCALAR && !strcmp(c.tags[i + 1], fixture[i].tag) && it->step == fixture[i].step &&
                  it->wall_time == fixture[i].wall && it->value == fixture[i].value && it->record == i + 1,
              "scalar %zu: %s step %lld value %g", i, c.tags[i + 1], (long long)it->step, (double)it->value);
    }
    CHECK(c.it[NFIX + 1].kind == TERN_TB_SESSION_LOG && c.it[NFIX + 1].status == 1 && c.it[NFIX + 1].step == 7, "session log");
}

/* The bytes of a file from its second record on (the first is file_version, stamped with the time
 * of writing). */
static uint8_t *after_first_record(const char *path, size_t *n) {
    char *text;
    size_t size;
    if (tern_read_file(path, &text, &size) != TERN_OK || size < 12) return NULL;
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len |= (uint64_t)(uint8_t)text[i] << (8 * i);
    size_t skip = 12 + (size_t)len + 4;
    if (skip > size) {
        free(text);
        return NULL;
    }
    memmove(text, text + skip, size - skip);
    *n = size - skip;
    return (uint8_t *)text;
}

static void test_writer_matches_tensorboard(void) {
    const char *d = test_tmpdir("watch_writer");
    tern_tb *tb;
    tern_status st = tern_tb_open(&tb, d);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    if (st != TERN_OK) return;
    char path[600];
    snprintf(path, sizeof path, "%s", tern_tb_path(tb));
    const char *base = strrchr(path, '/') + 1;
    char host[256] = "";
    gethostname(host, sizeof host);
    long long t;
    char rest[300];
    CHECK(sscanf(base, "events.out.tfevents.%10lld.%299s", &t, rest) == 2 && !strcmp(rest, host) && llabs(t - (long long)time(NULL)) < 60,
          "file name %s", base);
    for (size_t i = 0; i < NFIX && st == TERN_OK; i++) st = tern_tb_scalar(tb, fixture[i].tag, fixture[i].step, fixture[i].wall, fixture[i].value);
    if (st == TERN_OK) st = tern_tb_session_start(tb, 7, 1700000102.0);
    CHECK(tern_tb_close(tb) == TERN_OK && st == TERN_OK, "%s", tern_errmsg());
    size_t na = 0, nb = 0;
    uint8_t *a = after_first_record(path, &na), *b = after_first_record("tests/fixtures/watch/tensorboard.tfevents", &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na), "tern's records (%zu bytes) differ from TensorBoard's (%zu bytes)", na, nb);
    free(a);
    free(b);
    /* a second writer in the same second and folder gets another name */
    tern_tb *t1, *t2;
    CHECK(tern_tb_open(&t1, d) == TERN_OK && tern_tb_open(&t2, d) == TERN_OK, "%s", tern_errmsg());
    CHECK(strcmp(tern_tb_path(t1), tern_tb_path(t2)) != 0, "two writers share %s", tern_tb_path(t1));
    tern_tb_close(t1);
    tern_tb_close(t2);
}

static void test_round_trip(void) {
    const char *d = test_tmpdir("watch_round");
    tern_tb *tb;
    if (tern_tb_open(&tb, d) != TERN_OK) {
        CHECK(0, "%s", tern_errmsg());
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s", tern_tb_path(tb));
    for (int i = 0; i < 60; i++) {
        char tag[40];
        snprintf(tag, sizeof tag, "t%d/%s", i % 3, i % 2 ? "x" : "a much longer tag name with spaces");
        tern_tb_scalar(tb, tag, (int64_t)i * 1000003, 1e9 + i * 0.25, tern_rng_normal(1, 2, (uint64_t)i) * 1e3f);
    }
    CHECK(tern_tb_flush(tb) == TERN_OK && tern_tb_close(tb) == TERN_OK, "%s", tern_errmsg());
    collected c = {0};
    size_t nrec;
    CHECK(tern_tb_read_file(path, collect, &c, &nrec) == TERN_OK && nrec == 61, "%s (%zu records)", tern_errmsg(), nrec);
    for (int i = 0; i < 60 && (size_t)i + 1 < c.n; i++) {
        char tag[40];
        snprintf(tag, sizeof tag, "t%d/%s", i % 3, i % 2 ? "x" : "a much longer tag name with spaces");
        const tern_tb_item *it = &c.it[i + 1];
        CHECK(!strcmp(c.tags[i + 1], tag) && it->step == (int64_t)i * 1000003 && it->wall_time == 1e9 + i * 0.25 &&
                  it->value == tern_rng_normal(1, 2, (uint64_t)i) * 1e3f,
              "scalar %d", i);
    }
}

static void expect_bad(const uint8_t *p, size_t n, const char *want) {
    collected c = {0};
    tern_status st = tern_tb_read_buffer(p, n, "bad.tfevents", collect, &c, NULL);
    CHECK(st == TERN_EFORMAT && strstr(tern_errmsg(), want), "status %d, message '%s', wanted '%s'", (int)st, tern_errmsg(), want);
}

static void test_damage_refused(void) {
    tern_map m;
    if (tern_map_file(&m, "tests/fixtures/watch/tensorboard.tfevents") != TERN_OK) {
        CHECK(0, "%s", tern_errmsg());
        return;
    }
    size_t n = m.size;
    uint8_t *b = malloc(n);
    memcpy(b, m.data, n);
    /* record 1 starts at offset 40 (record 0: 12 + 24 + 4 bytes); its data at 52 */
    b[60] ^= 1;
    expect_bad(b, n, "bad.tfevents: record 1 at offset 40: the data's CRC is 0x");
    memcpy(b, m.data, n);
    b[41] ^= 0x80;
    expect_bad(b, n, "bad.tfevents: record 1 at offset 40: the length's CRC is 0x");
    memcpy(b, m.data, n);
    expect_bad(b, n - 2, "bad.tfevents: record 7 at offset");
    expect_bad(b, n - 2, "bytes of data, but the file ends");
    expect_bad(b, 45, "bad.tfevents: record 1 at offset 40: the file ends inside the record's 12-byte header (5 bytes left)");
    expect_bad((const uint8_t *)"{\"step\": 1, \"loss\": 2}\n", 23, "bad.tfevents: record 0 at offset 0: the length's CRC is");
    /* a record whose CRCs are right but whose Event is not protobuf: wall_time as a varint */
    uint8_t ev[] = {0x08, 0x01};
    uint8_t rec[32];
    memset(rec, 0, sizeof rec);
    rec[0] = sizeof ev;
    uint32_t c1 = tern_crc32c_mask(tern_crc32c(rec, 8)), c2 = tern_crc32c_mask(tern_crc32c(ev, sizeof ev));
    memcpy(rec + 8, &c1, 4);
    memcpy(rec + 12, ev, sizeof ev);
    memcpy(rec + 12 + sizeof ev, &c2, 4);
    expect_bad(rec, 12 + sizeof ev + 4, "bad.tfevents: record 0 at offset 0: Event field 1 (wall_time) is varint, expected 64-bit");
    uint8_t ev2[] = {0x2a, 0x05, 0x0a}; /* a summary whose length runs past the Event */
    rec[0] = sizeof ev2;
    c1 = tern_crc32c_mask(tern_crc32c(rec, 8));
    c2 = tern_crc32c_mask(tern_crc32c(ev2, sizeof ev2));
    memcpy(rec + 8, &c1, 4);
    memcpy(rec + 12, ev2, sizeof ev2);
    memcpy(rec + 12 + sizeof ev2, &c2, 4);
    expect_bad(rec, 12 + sizeof ev2 + 4, "bad.tfevents: record 0 at offset 0: the Event has a length beyond the message");
    collected c = {0};
    size_t nrec = 9;
    CHECK(tern_tb_read_buffer(b, 0, "empty", collect, &c, &nrec) == TERN_OK && nrec == 0 && c.n == 0, "an empty file");
    free(b);
    tern_unmap(&m);
}

static void test_metrics_lines(void) {
    char tag[300];
    const char *keys[][2] = {{"loss", "train/loss"}, {"lr", "train/lr"}, {"tokens_per_s", "train/tokens_per_s"},
                             {"val_loss", "val/loss"}, {"val_ppl", "val/ppl"}, {"hellaswag_acc_norm", "hellaswag/acc_norm"},
                             {"lambada_ppl", "lambada/ppl"}, {"piqa_acc", "piqa/acc"}, {"valx", "train/valx"}, {"val_", "train/val_"}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CHECK(tern_tb_tag_for_key(keys[i][0], tag, sizeof tag) && !strcmp(tag, keys[i][1]), "%s -> %s", keys[i][0], tag);
    CHECK(!tern_tb_tag_for_key("step", tag, sizeof tag) && !tern_tb_tag_for_key("elapsed_s", tag, sizeof tag), "step, elapsed_s");
    const char *d = test_tmpdir("watch_lines");
    tern_tb *tb;
    if (tern_tb_open(&tb, d) != TERN_OK) return;
    char path[600];
    snprintf(path, sizeof path, "%s", tern_tb_path(tb));
    size_t k;
    CHECK(tern_tb_metrics_line(tb, "{\"step\":5,\"loss\":2.5,\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":1234.5,"
                                   "\"elapsed_s\":3.2,\"skipped\":true,\"note\":\"x\",\"big\":1e300}",
                               0, 100.0, &k) == TERN_OK && k == 5,
          "%s (%zu scalars)", tern_errmsg(), k);
    const char *val = "{\"step\":5,\"val_loss\":6.25,\"val_ppl\":518.0,\"val_tokens\":4096}trailing";
    CHECK(tern_tb_metrics_line(tb, val, strlen(val) - 8, 101.0, &k) == TERN_OK && k == 3, "%s (%zu)", tern_errmsg(), k);
    CHECK(tern_tb_metrics_line(tb, "[1,2]", 0, 0, &k) == TERN_EFORMAT &&
              strstr(tern_errmsg(), "not a JSON object with a whole-number \"step\": [1,2]"),
          "%s", tern_errmsg());
    CHECK(tern_tb_metrics_line(tb, "{\"step\":1.5,\"loss\":1}", 0, 0, &k) == TERN_EFORMAT, "fractional step");
    CHECK(tern_tb_metrics_line(tb, "{\"loss\":1}", 0, 0, &k) == TERN_EFORMAT && k == 0, "no step");
    tern_tb_close(tb);
    collected c = {0};
    CHECK(tern_tb_read_file(path, collect, &c, NULL) == TERN_OK && c.n == 9, "%zu items", c.n);
    const char *tags[] = {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "train/big",
                          "val/loss", "val/ppl", "val/tokens"};
    const float vals[] = {2.5f, 0.001f, 1.5f, 1234.5f, INFINITY, 6.25f, 518.0f, 4096.0f};
    for (int i = 0; i < 8 && (size_t)i + 1 < c.n; i++)
        CHECK(!strcmp(c.tags[i + 1], tags[i]) && c.it[i + 1].value == vals[i] && c.it[i + 1].step == 5 &&
                  c.it[i + 1].wall_time == (i < 5 ? 100.0 : 101.0),
              "item %d: %s %g", i, c.tags[i + 1], (double)c.it[i + 1].value);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A run folder as tern train leaves it (config.json, metrics.jsonl), with a skipped step (whose
 * loss tern writes as nan, not JSON), task lines and a last line cut off by a kill. */
static void fake_run(const char *dir, double scale, int tasks) {
    write_text(dir, "config.json", "{\"batch\": 4, \"seq\": 32, \"grad_accum\": 2, \"n_layer\": 2}\n");
    char *buf = malloc(1 << 16);
    size_t k = 0;
    for (int s = 1; s <= 40; s++) {
        if (s == 17) {
            k += (size_t)snprintf(buf + k, 200, "{\"step\":17,\"loss\":nan,\"lr\":0.001,\"grad_norm\":nan,\"tokens_per_s\":9,\"elapsed_s\":8.5,\"skipped\":true}\n");
            continue;
        }
        k += (size_t)snprintf(buf + k, 200, "{\"step\":%d,\"loss\":%.4f,\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":1000,\"elapsed_s\":%.1f}\n",
                              s, scale * (2.0 + 8.0 / s), s * 0.5);
        if (s % 10 == 0)
            k += (size_t)snprintf(buf + k, 200, "{\"step\":%d,\"val_loss\":%.4f,\"val_ppl\":10,\"val_tokens\":4096}\n", s,
                                  scale * (2.2 + 8.0 / s));
        if (tasks && s % 20 == 0)
            k += (size_t)snprintf(buf + k, 200, "{\"step\":%d,\"hellaswag_acc\":0.26,\"hellaswag_acc_norm\":%.2f,\"hellaswag_items\":100}\n",
                                  s, 0.25 + s / 1000.0);
    }
    k += (size_t)snprintf(buf + k, 100, "{\"step\":41,\"loss\":1.9");
    write_text(dir, "metrics.jsonl", buf);
    free(buf);
}

static void test_tb_command(void) {
    const char *d = test_tmpdir("watch_tb_run");
    fake_run(d, 1, 1);
    char out[4096];
    int rc = run_cmd(out, sizeof out, "%s tb %s && %s tb %s && ls %s/tb | wc -l", test_tern_bin(), d, test_tern_bin(), d, d);
    CHECK(rc == 0 && strstr(out, "wrote ") && strstr(out, ".tern-metrics: 174 scalars") && strstr(out, "\n1\n"),
          "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s tb --dump %s/tb/events.out.tfevents.* | tail -1", test_tern_bin(), d);
    CHECK(rc == 0 && strstr(out, "all lengths and CRCs good: 1 file_version, 174 scalars, 0 session logs, 0 other"), "%s", out);
    rc = run_cmd(out, sizeof out, "%s tb --dump %s/tb/events.out.tfevents.* | grep -m1 'step 40 train/loss'", test_tern_bin(), d);
    CHECK(rc == 0 && strstr(out, "train/loss = 2.20000005"), "%s", out);
    /* wall times: the start (file time less the last elapsed_s, 20 s) plus each line's elapsed_s */
    rc = run_cmd(out, sizeof out, "%s tb --dump %s/tb/events.out.tfevents.* | awk '/step 1 train\\/loss/ {a=$4} /step 40 train\\/loss/ "
                                  "{b=$4} END {printf \"%%.3f\\n\", b-a}'", test_tern_bin(), d);
    CHECK(rc == 0 && !strcmp(out, "19.500\n"), "elapsed between steps 1 and 40: %s", out);
    rc = run_cmd(out, sizeof out, "%s tb %s/nothing", test_tern_bin(), d);
    CHECK(rc == 1 && strstr(out, "nothing/metrics.jsonl: No such file or directory (is ") , "rc %d: %s", rc, out);
    write_text(d, "metrics.jsonl", "{\"step\":1,\"loss\":2}\n{\"loss\":3}\n");
    rc = run_cmd(out, sizeof out, "%s tb %s", test_tern_bin(), d);
    CHECK(rc == 1 && strstr(out, "metrics.jsonl: line 2: no \"step\" that is a whole number from 0 to 2^53"), "rc %d: %s", rc, out);
    write_text(d, "metrics.jsonl", "TERNSEAL....");
    rc = run_cmd(out, sizeof out, "%s tb %s", test_tern_bin(), d);
    CHECK(rc == 1 && strstr(out, "metrics.jsonl: sealed (the run used --seal-metrics)"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s tb --dump tests/fixtures/watch/../../../README.md", test_tern_bin());
    CHECK(rc == 1 && strstr(out, "README.md: record 0 at offset 0: the length's CRC is"), "rc %d: %s", rc, out);
}

/* Pixels of exactly this colour in a PNG. */
static long count_colour(const char *png, int r, int g, int b, int *w, int *h) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(png);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return -1;
    }
    *w = cairo_image_surface_get_width(s);
    *h = cairo_image_surface_get_height(s);
    const uint8_t *p = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    long n = 0;
    for (int y = 0; y < *h; y++)
        for (int x = 0; x < *w; x++) {
            uint32_t px;
            memcpy(&px, p + (size_t)y * (size_t)stride + 4 * (size_t)x, 4);
            n += ((px >> 16) & 0xFF) == (uint32_t)r && ((px >> 8) & 0xFF) == (uint32_t)g && (px & 0xFF) == (uint32_t)b;
        }
    cairo_surface_destroy(s);
    return n;
}

static void test_plot(void) {
    const char *a = test_tmpdir("watch_plot/run-a"), *b = test_tmpdir("watch_plot/run-b");
    fake_run(a, 1, 1);
    fake_run(b, 1.1, 0);
    char png[700], svg[700], out[4096];
    snprintf(png, sizeof png, "%s/../loss.png", a);
    snprintf(svg, sizeof svg, "%s/../loss.svg", a);
    const char *runs[] = {a, b};
    tern_plot_opts o = {.title = "two runs", .smooth = 0.6};
    tern_status st = tern_plot_runs(runs, 2, png, &o);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    int w = 0, h = 0;
    long blue = count_colour(png, 0x1f, 0x77, 0xb4, &w, &h), orange = count_colour(png, 0xff, 0x7f, 0x0e, &w, &h);
    CHECK(w == 960 && h == 860, "size %dx%d (two panels: run-a has HellaSwag scores)", w, h);
    CHECK(blue > 300 && orange > 300, "run colours: %ld blue, %ld orange pixels", blue, orange);
    o.no_tasks = 1;
    o.width = 640;
    o.height = 400;
    CHECK(tern_plot_runs(runs, 1, png, &o) == TERN_OK, "%s", tern_errmsg());
    orange = count_colour(png, 0xff, 0x7f, 0x0e, &w, &h);
    CHECK(w == 640 && h == 400 && orange == 0, "one run, no tasks: %dx%d, %ld orange pixels", w, h, orange);
    int rc = run_cmd(out, sizeof out, "%s plot %s %s -o %s --steps && head -c 200 %s", test_tern_bin(), a, b, svg, svg);
    CHECK(rc == 0 && strstr(out, "wrote ") && strstr(out, "<svg"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s plot %s -o %s/x.jpg", test_tern_bin(), a, a);
    CHECK(rc == 1 && strstr(out, "x.jpg: the picture's name must end in .svg or .png"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s plot %s/none -o %s", test_tern_bin(), a, svg);
    CHECK(rc == 1 && strstr(out, "none/config.json"), "rc %d: %s", rc, out);
    write_text(b, "config.json", "{\"batch\": 4}");
    rc = run_cmd(out, sizeof out, "%s plot %s -o %s", test_tern_bin(), b, svg);
    CHECK(rc == 1 && strstr(out, "config.json: not a run configuration (needs positive whole numbers batch, seq, grad_accum)"),
          "rc %d: %s", rc, out);
    write_text(b, "config.json", "{\"batch\": 4, \"seq\": 32, \"grad_accum\": 2}");
    write_text(b, "metrics.jsonl", "");
    rc = run_cmd(out, sizeof out, "%s plot %s -o %s", test_tern_bin(), b, svg);
    CHECK(rc == 1 && strstr(out, "no loss to plot"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s plot %s -o %s --smooth 1", test_tern_bin(), a, svg);
    CHECK(rc == 1 && strstr(out, "smoothing must be in [0, 1), got 1"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s plot %s -o %s/no/such/folder/x.png", test_tern_bin(), a, a);
    CHECK(rc == 1 && strstr(out, "no/such/folder/x.png") && strstr(out, "cannot create"), "rc %d: %s", rc, out);
}

int main(void) {
    RUN(test_crc32c);
    RUN(test_read_tensorboards_file);
    RUN(test_writer_matches_tensorboard);
    RUN(test_round_trip);
    RUN(test_damage_refused);
    RUN(test_metrics_lines);
    RUN(test_tb_command);
    RUN(test_plot);
    return check_exit();
}
