/* TensorBoard event files, written and read by tern itself: TensorFlow's record framing (uint64
 * length, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes) around
 * protobuf-encoded Event messages, encoded and decoded here by hand. Only what scalars need is
 * written: Event{wall_time=1 (double), step=2 (int64), file_version=3 (string), summary=5,
 * session_log=7}, Summary{value=1 (repeated)}, Summary.Value{tag=1 (string), simple_value=2
 * (float)}, SessionLog{status=1 (enum)}, the field numbers of tensorboard/compat/proto/event.proto
 * and summary.proto. The reader checks every length and CRC and skips fields it does not use by
 * their wire type, as protobuf parsers do. Not a TensorFlow runtime: no graphs, images or tensors. */
#include "watch/watch_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- CRC-32C: the reflected Castagnoli polynomial 0x82F63B78, one table lookup a byte ---- */
static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t tern_crc32c(const void *p, size_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    const uint8_t *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tern_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- encoding ---- */
static void put_varint(tern_buf *b, uint64_t v) {
    uint8_t t[10];
    int k = 0;
    do {
        t[k] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v);
    tern_buf_put(b, t, (size_t)k);
}

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static void put_key(tern_buf *b, unsigned field, unsigned wire) { put_varint(b, (uint64_t)field << 3 | wire); }

static void put_bytes(tern_buf *b, unsigned field, const void *p, size_t n) {
    put_key(b, field, WIRE_LEN);
    put_varint(b, n);
    tern_buf_put(b, p, n);
}

static void put_double(tern_buf *b, unsigned field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_key(b, field, WIRE_I64);
    tern_buf_put_le(b, u, 8);
}

/* Event's wall_time and step; proto3 leaves out fields at their default (0), as protobuf's own
 * serialisers do, so that the bytes equal TensorBoard's writer's. */
static void put_event_head(tern_buf *b, double wall_time, int64_t step) {
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    if (bits) put_double(b, 1, wall_time);
    if (step) {
        put_key(b, 2, WIRE_VARINT);
        put_varint(b, (uint64_t)step); /* int64: negative numbers take ten bytes, two's complement */
    }
}

/* Appends ev's bytes to out as one record: the length, the masked CRC of the length's 8 bytes,
 * the bytes, the masked CRC of the bytes. */
static void frame(tern_buf *out, const tern_buf *ev) {
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)ev->n >> (8 * i));
    tern_buf_put(out, len, 8);
    tern_buf_put_le(out, tern_crc32c_mask(tern_crc32c(len, 8)), 4);
    tern_buf_put(out, ev->p, ev->n);
    tern_buf_put_le(out, tern_crc32c_mask(tern_crc32c(ev->p, ev->n)), 4);
}

static tern_status rec_file_version(tern_buf *out, double wall_time) {
    tern_buf ev = {0};
    put_event_head(&ev, wall_time, 0);
    static const char v[] = "brain.Event:2";
    put_bytes(&ev, 3, v, sizeof v - 1);
    frame(out, &ev);
    int oom = ev.oom || out->oom;
    free(ev.p);
    return oom ? tern_err(TERN_ENOMEM, "out of memory for an event") : TERN_OK;
}

static tern_status rec_scalar(tern_buf *out, const char *tag, int64_t step, double wall_time, float value) {
    tern_buf val = {0}, sum = {0}, ev = {0};
    uint32_t u;
    memcpy(&u, &value, 4);
    put_bytes(&val, 1, tag, strlen(tag));
    put_key(&val, 2, WIRE_I32); /* simple_value is in a oneof: written even when 0 */
    tern_buf_put_le(&val, u, 4);
    if (!val.oom) put_bytes(&sum, 1, val.p, val.n);
    put_event_head(&ev, wall_time, step);
    if (!sum.oom) put_bytes(&ev, 5, sum.p, sum.n);
    frame(out, &ev);
    int oom = val.oom || sum.oom || ev.oom || out->oom;
    free(val.p);
    free(sum.p);
    free(ev.p);
    return oom ? tern_err(TERN_ENOMEM, "out of memory for an event") : TERN_OK;
}

static tern_status rec_session_start(tern_buf *out, int64_t step, double wall_time) {
    tern_buf ev = {0};
    static const uint8_t start[] = {0x08, 0x01}; /* SessionLog{status: START} */
    put_event_head(&ev, wall_time, step);
    put_bytes(&ev, 7, start, sizeof start);
    frame(out, &ev);
    int oom = ev.oom || out->oom;
    free(ev.p);
    return oom ? tern_err(TERN_ENOMEM, "out of memory for an event") : TERN_OK;
}

/* ---- the writer ---- */
struct tern_tb {
    FILE *f;
    char *path;
    tern_buf rec; /* the record being written */
};

const char *tern_tb_path(const tern_tb *tb) { return tb->path; }

/* This machine's name, with anything that cannot stand in a file name replaced by '_'. */
static void host_name(char *out, size_t n) {
    if (gethostname(out, n) != 0 || !out[0]) snprintf(out, n, "localhost");
    out[n - 1] = 0;
    for (char *c = out; *c; c++)
        if (*c == '/' || (unsigned char)*c < 32) *c = '_';
}

static tern_status write_rec(tern_tb *tb) {
    tern_status st = TERN_OK;
    if (tb->rec.oom) st = tern_err(TERN_ENOMEM, "out of memory for an event of %s", tb->path);
    else if (fwrite(tb->rec.p, 1, tb->rec.n, tb->f) != tb->rec.n)
        st = tern_err(TERN_EIO, "writing %s: %s", tb->path, strerror(errno));
    tb->rec.n = 0;
    return st;
}

tern_status tern_tb_open(tern_tb **out, const char *dir) {
    *out = NULL;
    TERN_TRY(tern_mkdir_p(dir));
    char host[256], name[400];
    host_name(host, sizeof host);
    double now = tern_wall_time();
    tern_tb *tb = calloc(1, sizeof *tb);
    if (!tb) return tern_err(TERN_ENOMEM, "out of memory");
    int fd = -1;
    for (int k = 0; k < 1000 && fd < 0; k++) {
        if (k) snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d", (long long)now, host, k);
        else snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s", (long long)now, host);
        free(tb->path);
        tb->path = tern_path_join(dir, name);
        if (!tb->path) break;
        fd = open(tb->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) break;
    }
    tern_status st = TERN_OK;
    if (!tb->path) st = tern_err(TERN_ENOMEM, "out of memory");
    else if (fd < 0) st = tern_err(TERN_EIO, "%s: cannot create: %s", tb->path, strerror(errno));
    else if (!(tb->f = fdopen(fd, "wb"))) {
        st = tern_err(TERN_EIO, "%s: %s", tb->path, strerror(errno));
        close(fd);
    }
    if (st == TERN_OK) st = rec_file_version(&tb->rec, now);
    if (st == TERN_OK) st = write_rec(tb);
    if (st == TERN_OK) st = tern_tb_flush(tb);
    if (st != TERN_OK) {
        if (tb->f) unlink(tb->path);
        tern_tb_close(tb);
        return st;
    }
    *out = tb;
    return TERN_OK;
}

tern_status tern_tb_scalar(tern_tb *tb, const char *tag, int64_t step, double wall_time, float value) {
    TERN_TRY(rec_scalar(&tb->rec, tag, step, wall_time, value));
    return write_rec(tb);
}

tern_status tern_tb_session_start(tern_tb *tb, int64_t step, double wall_time) {
    TERN_TRY(rec_session_start(&tb->rec, step, wall_time));
    return write_rec(tb);
}

tern_status tern_tb_flush(tern_tb *tb) {
    if (fflush(tb->f) != 0) return tern_err(TERN_EIO, "writing %s: %s", tb->path, strerror(errno));
    return TERN_OK;
}

tern_status tern_tb_close(tern_tb *tb) {
    if (!tb) return TERN_OK;
    tern_status st = TERN_OK;
    if (tb->f) {
        if (fflush(tb->f) != 0 || fsync(fileno(tb->f)) != 0) st = tern_err(TERN_EIO, "writing %s: %s", tb->path, strerror(errno));
        if (fclose(tb->f) != 0 && st == TERN_OK) st = tern_err(TERN_EIO, "closing %s: %s", tb->path, strerror(errno));
    }
    free(tb->rec.p);
    free(tb->path);
    free(tb);
    return st;
}

/* ---- metrics lines ---- */
/* Keys with these prefixes are grouped under them in TensorBoard: evaluation on the val split and
 * the benchmark tasks of tern eval --task (their metrics lines, docs/EVALUATION.md). */
static const char *const groups[] = {"val", "hellaswag", "lambada", "piqa"};

int tern_tb_tag_for_key(const char *key, char *out, size_t n) {
    if (!strcmp(key, "step") || !strcmp(key, "elapsed_s")) return 0;
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        size_t k = strlen(groups[g]);
        if (!strncmp(key, groups[g], k) && key[k] == '_' && key[k + 1]) {
            snprintf(out, n, "%s/%s", groups[g], key + k + 1);
            return 1;
        }
    }
    snprintf(out, n, "train/%s", key);
    return 1;
}

/* A double as TensorBoard's float32 simple_value; beyond float's range it is an infinity (a
 * conversion out of range would be undefined in C). */
static float to_f32(double v) {
    if (v > FLT_MAX) return INFINITY;
    if (v < -FLT_MAX) return -INFINITY;
    return (float)v;
}

/* Appends the scalars of one metrics object to out; counts them in *k. */
static tern_status scalars_of(tern_buf *out, const cJSON *j, uint64_t step, double wall_time, size_t *k) {
    *k = 0;
    for (const cJSON *c = j->child; c; c = c->next) {
        char tag[300];
        if (!cJSON_IsNumber(c) || !c->string || !tern_tb_tag_for_key(c->string, tag, sizeof tag)) continue;
        TERN_TRY(rec_scalar(out, tag, (int64_t)step, wall_time, to_f32(c->valuedouble)));
        (*k)++;
    }
    return TERN_OK;
}

tern_status tern_tb_metrics_line(tern_tb *tb, const char *line, size_t n, double wall_time, size_t *n_written) {
    if (n_written) *n_written = 0;
    cJSON *j = n ? cJSON_ParseWithLength(line, n) : cJSON_Parse(line);
    const cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
    tern_status st = TERN_OK;
    if (!cJSON_IsObject(j) || !cJSON_IsNumber(s) || !(s->valuedouble >= 0 && s->valuedouble <= 9007199254740992.0) ||
        s->valuedouble != floor(s->valuedouble))
        st = tern_err(TERN_EFORMAT, "metrics line for %s: not a JSON object with a whole-number \"step\": %.*s", tb->path,
                      (int)((n ? n : strlen(line)) < 60 ? (n ? n : strlen(line)) : 60), line);
    size_t k = 0;
    if (st == TERN_OK) st = scalars_of(&tb->rec, j, (uint64_t)s->valuedouble, wall_time, &k);
    if (st == TERN_OK) st = write_rec(tb); /* one write for the whole line */
    tb->rec.n = 0;
    cJSON_Delete(j);
    if (st == TERN_OK && n_written) *n_written = k;
    return st;
}

/* ---- converting a run's metrics.jsonl ---- */
typedef struct conv {
    tern_buf out;
    double start, elapsed; /* the run's start (seconds since the epoch) and the last elapsed_s seen */
    size_t scalars;
} conv;

static tern_status max_elapsed(void *ctx, const cJSON *obj, uint64_t step, size_t lineno) {
    (void)step, (void)lineno;
    double e = watch_num(obj, "elapsed_s"), *m = ctx;
    if (e > *m) *m = e; /* NaN compares false */
    return TERN_OK;
}

static tern_status conv_line(void *ctx, const cJSON *obj, uint64_t step, size_t lineno) {
    (void)lineno;
    conv *c = ctx;
    double e = watch_num(obj, "elapsed_s");
    if (isfinite(e)) c->elapsed = e;
    size_t k;
    TERN_TRY(scalars_of(&c->out, obj, step, c->start + c->elapsed, &k));
    c->scalars += k;
    return TERN_OK;
}

/* Removes the event files an earlier conversion left in dir (named *.tern-metrics) other than
 * keep, so that TensorBoard does not show each scalar twice. Files of other writers stay. */
static void remove_old_conversions(const char *dir, const char *keep) {
    DIR *d = opendir(dir);
    if (!d) return;
    static const char suffix[] = ".tern-metrics";
    for (struct dirent *de; (de = readdir(d));) {
        size_t k = strlen(de->d_name);
        if (strncmp(de->d_name, "events.out.tfevents.", 20) || k < sizeof suffix ||
            strcmp(de->d_name + k - (sizeof suffix - 1), suffix) || !strcmp(de->d_name, keep))
            continue;
        char *p = tern_path_join(dir, de->d_name);
        if (p && unlink(p) != 0) tern_log(TERN_LOG_WARN, "could not remove the earlier conversion %s: %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
}

tern_status tern_tb_convert_run(const char *rundir, const char *outdir, char **path, size_t *n_scalars) {
    if (path) *path = NULL;
    char *mpath = tern_path_join(rundir, "metrics.jsonl"), *dir = outdir ? strdup(outdir) : tern_path_join(rundir, "tb");
    conv c = {0};
    double last = 0;
    struct stat sb;
    tern_status st = mpath && dir ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK && stat(mpath, &sb) != 0)
        st = tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: %s (is %s a run folder?)", mpath, strerror(errno), rundir);
    if (st == TERN_OK) st = watch_read_metrics(mpath, max_elapsed, &last, NULL);
    if (st == TERN_OK) {
        c.start = (double)sb.st_mtim.tv_sec + 1e-9 * (double)sb.st_mtim.tv_nsec - last;
        st = rec_file_version(&c.out, c.start);
    }
    if (st == TERN_OK) st = watch_read_metrics(mpath, conv_line, &c, NULL);
    if (st == TERN_OK && c.out.oom) st = tern_err(TERN_ENOMEM, "out of memory for the events of %s", mpath);
    char host[256], name[400], *out = NULL;
    if (st == TERN_OK) st = tern_mkdir_p(dir);
    if (st == TERN_OK) {
        host_name(host, sizeof host);
        snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.tern-metrics", (long long)c.start, host);
        out = tern_path_join(dir, name);
        st = out ? tern_write_file_atomic(out, c.out.p, c.out.n) : tern_err(TERN_ENOMEM, "out of memory");
        if (st == TERN_OK) remove_old_conversions(dir, name);
    }
    free(c.out.p);
    free(mpath);
    free(dir);
    if (st == TERN_OK && n_scalars) *n_scalars = c.scalars;
    if (st == TERN_OK && path) *path = out;
    else free(out);
    return st;
}

/* ---- the reader ---- */
typedef struct pb {
    const uint8_t *p, *end;
} pb;

/* A varint of at most ten bytes whose value fits 64 bits; 0 when malformed or cut off. */
static int get_varint(pb *r, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) return 0;
        uint8_t b = *r->p++;
        if (i == 9 && b > 1) return 0;
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* One field: its number, wire type, and where its value lies (for VARINT the value itself). */
typedef struct field {
    uint64_t num;
    unsigned wire;
    uint64_t u;             /* VARINT, I64, I32 */
    const uint8_t *p;       /* LEN: the bytes */
    size_t n;
} field;

/* Reads the next field; returns 1, 0 at the end, or -1 when malformed (*why says how). */
static int next_field(pb *r, field *f, const char **why) {
    if (r->p == r->end) return 0;
    uint64_t key;
    if (!get_varint(r, &key)) return *why = "a malformed field key", -1;
    f->num = key >> 3;
    f->wire = (unsigned)(key & 7);
    if (f->num == 0) return *why = "field number 0", -1;
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case WIRE_VARINT:
        if (!get_varint(r, &f->u)) return *why = "a malformed varint", -1;
        return 1;
    case WIRE_I64:
    case WIRE_I32: {
        size_t k = f->wire == WIRE_I64 ? 8 : 4;
        if (left < k) return *why = "a fixed-size value cut off", -1;
        f->u = 0;
        for (size_t i = 0; i < k; i++) f->u |= (uint64_t)r->p[i] << (8 * i);
        r->p += k;
        return 1;
    }
    case WIRE_LEN: {
        uint64_t n;
        if (!get_varint(r, &n)) return *why = "a malformed length", -1;
        if (n > (uint64_t)(r->end - r->p)) return *why = "a length beyond the message", -1;
        f->p = r->p;
        f->n = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        return *why = "a group or unknown wire type", -1;
    }
}

/* The fields of an Event that the reader uses, found in any order (the last of a repeated
 * scalar field wins, as in protobuf). */
typedef struct event {
    double wall_time;
    int64_t step;
    const uint8_t *version, *summary, *session;
    size_t version_n, summary_n, session_n;
    int other;
} event;

static const char *wire_name(unsigned w) {
    static const char *names[] = {"varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit", "6", "7"};
    return names[w & 7];
}

/* Decodes an Event; returns NULL or a message. */
static const char *decode_event(const uint8_t *p, size_t n, event *e, char *why_buf, size_t why_n) {
    memset(e, 0, sizeof *e);
    pb r = {p, p + n};
    field f;
    const char *why = NULL;
    int rc;
    static const unsigned want[11] = {0, WIRE_I64, WIRE_VARINT, WIRE_LEN, WIRE_LEN, WIRE_LEN, WIRE_LEN, WIRE_LEN, WIRE_LEN, WIRE_LEN, WIRE_LEN};
    static const char *names[11] = {"", "wall_time", "step", "file_version", "graph_def", "summary", "log_message",
                                    "session_log", "tagged_run_metadata", "meta_graph_def", "source_metadata"};
    while ((rc = next_field(&r, &f, &why)) == 1) {
        if (f.num <= 10 && f.wire != want[f.num]) {
            snprintf(why_buf, why_n, "Event field %u (%s) is %s, expected %s", (unsigned)f.num, names[f.num], wire_name(f.wire),
                     wire_name(want[f.num]));
            return why_buf;
        }
        switch (f.num) {
        case 1: memcpy(&e->wall_time, &f.u, 8); break;
        case 2: e->step = (int64_t)f.u; break;
        case 3: e->version = f.p, e->version_n = f.n; break;
        case 5: e->summary = f.p, e->summary_n = f.n; break;
        case 7: e->session = f.p, e->session_n = f.n; break;
        default: e->other = 1; break;
        }
    }
    if (rc < 0) {
        snprintf(why_buf, why_n, "the Event has %s", why);
        return why_buf;
    }
    return NULL;
}

typedef struct reader {
    const char *name;
    tern_tb_item_fn fn;
    void *ctx;
    tern_tb_item it;
} reader;

#define BAD(...) tern_err(TERN_EFORMAT, __VA_ARGS__)

/* The items of a Summary: one per Value. */
static tern_status read_summary(reader *rd, const uint8_t *p, size_t n) {
    pb r = {p, p + n};
    field f;
    const char *why = NULL;
    int rc;
    tern_tb_item *it = &rd->it;
    while ((rc = next_field(&r, &f, &why)) == 1) {
        if (f.num != 1) continue; /* Summary has no other field; skip what a newer one may add */
        if (f.wire != WIRE_LEN)
            return BAD("%s: record %zu at offset %llu: Summary field 1 (value) is %s, expected length-delimited", rd->name,
                       it->record, (unsigned long long)it->offset, wire_name(f.wire));
        pb v = {f.p, f.p + f.n};
        field g;
        int has_tag = 0, has_value = 0;
        while ((rc = next_field(&v, &g, &why)) == 1) {
            if (g.num == 1) {
                if (g.wire != WIRE_LEN)
                    return BAD("%s: record %zu at offset %llu: Summary.Value field 1 (tag) is %s, expected length-delimited",
                               rd->name, it->record, (unsigned long long)it->offset, wire_name(g.wire));
                it->text = (const char *)g.p;
                it->text_len = g.n;
                has_tag = 1;
            } else if (g.num == 2) {
                if (g.wire != WIRE_I32)
                    return BAD("%s: record %zu at offset %llu: Summary.Value field 2 (simple_value) is %s, expected 32-bit",
                               rd->name, it->record, (unsigned long long)it->offset, wire_name(g.wire));
                uint32_t u = (uint32_t)g.u;
                memcpy(&it->value, &u, 4);
                has_value = 1;
            } else if (g.num >= 3 && g.num <= 8) {
                has_value = 0; /* another member of the value oneof (image, histogram, tensor...) replaces it */
            }
        }
        if (rc < 0) break;
        if (!has_tag) {
            it->text = "";
            it->text_len = 0;
        }
        it->kind = has_value ? TERN_TB_SCALAR : TERN_TB_OTHER;
        TERN_TRY(rd->fn(rd->ctx, it));
    }
    if (rc < 0)
        return BAD("%s: record %zu at offset %llu: the Summary has %s", rd->name, it->record, (unsigned long long)it->offset, why);
    return TERN_OK;
}

static tern_status read_event(reader *rd, const uint8_t *p, size_t n) {
    event e;
    char why[160];
    tern_tb_item *it = &rd->it;
    if (decode_event(p, n, &e, why, sizeof why))
        return BAD("%s: record %zu at offset %llu: %s", rd->name, it->record, (unsigned long long)it->offset, why);
    it->wall_time = e.wall_time;
    it->step = e.step;
    it->value = 0;
    it->status = 0;
    it->text = NULL;
    it->text_len = 0;
    if (e.version) {
        it->kind = TERN_TB_FILE_VERSION;
        it->text = (const char *)e.version;
        it->text_len = e.version_n;
        TERN_TRY(rd->fn(rd->ctx, it));
    }
    if (e.summary) TERN_TRY(read_summary(rd, e.summary, e.summary_n));
    if (e.session) {
        pb r = {e.session, e.session + e.session_n};
        field f;
        const char *w = NULL;
        int rc;
        while ((rc = next_field(&r, &f, &w)) == 1)
            if (f.num == 1 && f.wire == WIRE_VARINT) it->status = (int)(f.u & 0x7FFFFFFF);
        if (rc < 0) return BAD("%s: record %zu at offset %llu: the SessionLog has %s", rd->name, it->record, (unsigned long long)it->offset, w);
        it->kind = TERN_TB_SESSION_LOG;
        it->text = NULL;
        TERN_TRY(rd->fn(rd->ctx, it));
    }
    if (!e.version && !e.summary && !e.session) {
        it->kind = TERN_TB_OTHER;
        TERN_TRY(rd->fn(rd->ctx, it));
    }
    return TERN_OK;
}

static uint32_t get_le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

tern_status tern_tb_read_buffer(const uint8_t *p, size_t n, const char *name, tern_tb_item_fn fn, void *ctx, size_t *n_records) {
    reader rd = {name, fn, ctx, {0}};
    size_t off = 0, rec = 0;
    if (n_records) *n_records = 0;
    while (off < n) {
        rd.it.record = rec;
        rd.it.offset = off;
        size_t left = n - off;
        if (left < 12)
            return BAD("%s: record %zu at offset %zu: the file ends inside the record's 12-byte header (%zu bytes left)", name, rec,
                       off, left);
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)p[off + i] << (8 * i);
        uint32_t want = tern_crc32c_mask(tern_crc32c(p + off, 8)), got = get_le32(p + off + 8);
        if (want != got)
            return BAD("%s: record %zu at offset %zu: the length's CRC is 0x%08x, expected 0x%08x (not an event file, or damaged)",
                       name, rec, off, got, want);
        if (len > left - 12 || left - 12 - len < 4)
            return BAD("%s: record %zu at offset %zu: says %llu bytes of data, but the file ends %zu bytes after its header", name,
                       rec, off, (unsigned long long)len, left - 12);
        const uint8_t *d = p + off + 12;
        want = tern_crc32c_mask(tern_crc32c(d, (size_t)len));
        got = get_le32(d + len);
        if (want != got)
            return BAD("%s: record %zu at offset %zu: the data's CRC is 0x%08x, expected 0x%08x (damaged)", name, rec, off, got, want);
        TERN_TRY(read_event(&rd, d, (size_t)len));
        off += 12 + (size_t)len + 4;
        rec++;
        if (n_records) *n_records = rec;
    }
    return TERN_OK;
}

tern_status tern_tb_read_file(const char *path, tern_tb_item_fn fn, void *ctx, size_t *n_records) {
    tern_map m;
    TERN_TRY(tern_map_file(&m, path));
    tern_status st = tern_tb_read_buffer(m.data, m.size, path, fn, ctx, n_records);
    tern_unmap(&m);
    return st;
}
