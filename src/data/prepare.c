/* `prepare`: inputs -> documents -> token shards + manifest, as a pipeline. The calling thread
 * reads (decompressing; cutting plain text where pre-tokens end and at separators, JSON Lines at
 * newlines) and hands chunks of about 1 MiB to the workers, which decode JSON, measure, hash and
 * tokenize; one writer thread takes the chunks back in the order they were read and decides,
 * document by document, what is kept and which split it goes to. Every decision depends on the
 * input alone, so the output is the same whatever the number of threads. Memory is bounded by the
 * chunks in flight; a document longer than a chunk has its tokens held (spilled to a file beyond
 * a few MiB) until its end decides its split. Not the readers of inputs (input.c, jsonl.c) or of
 * shards (loader.c). The rules are in docs/FORMATS.md "Inputs of prepare" and "Data manifest". */
#include "data/data_int.h"
#include "tern/secure.h"
#include "tern/tok.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)          /* bytes of input per chunk */
#define DOC_MEM_TOKENS ((size_t)4 << 20) /* a held document's tokens kept in memory before they spill */
#define BUDGET_MIN ((size_t)32 << 20)    /* bytes of chunks in flight at most (or one chunk alone) */
#define N_EXAMPLES 3
/* a document looks binary with a NUL byte, or with more than this share of bytes not UTF-8 */
#define BINARY_BAD_SHARE 0.30

enum { SEG_START = 1, SEG_END = 2 };
enum { FMT_TEXT = 1, FMT_JSONL = 2 };
/* what the warnings count: the skip reasons, then three kinds of documents that are kept */
enum { NOTE_BINARY = TERN_SKIP_N, NOTE_BAD_UTF8, NOTE_EOT_TEXT, N_NOTES };

typedef struct {
    /* set by the reader */
    size_t off, len;   /* the segment's bytes in the chunk */
    uint8_t flags;     /* SEG_START: a document begins here; SEG_END: it ends here */
    int8_t skip;       /* a reason the reader already knows (a line too long), else -1 */
    uint64_t line;     /* JSON Lines: the line, from 1; text: the document in its file, from 1 */
    uint64_t long_len; /* a line too long: its length */
    uint32_t file;     /* the file it comes from (a chunk may hold several small files) */
    /* set by a worker */
    int8_t status;     /* a skip reason found in the line, else -1 */
    size_t err_at;
    const char *why;
    size_t ids_off, ids_n;
    uint64_t text_n;
    data_stats stats;
    int eot_text;     /* holds the text of <|endoftext|> */
    uint8_t hash[16]; /* whole documents: the first 16 bytes of BLAKE2b-256(seed || text) */
} seg;

typedef struct chunk {
    uint64_t seq;
    uint32_t file; /* the file being read into it */
    int fmt;       /* every segment's format */
    data_buf raw;
    seg *segs;
    size_t n_segs, cap_segs;
    tern_ids ids; /* every segment's ids, back to back */
    int done;     /* a worker has finished it */
    struct chunk *next;
} chunk;

/* A document's tokens while its split is not yet known: in memory, then in a file (never with a
 * key: sealed data leaves no plaintext on disk). */
typedef struct {
    int32_t *mem;
    size_t n, cap;
    FILE *spill;
    char *spill_path;
    uint64_t spilled;
    int active;
    /* the document */
    tern_hasher h;
    uint8_t hash[16];
    uint64_t text_n;
    data_stats stats;
    int eot_text;
    uint32_t file;
    uint64_t line;
} docbuf;

typedef struct pipe_s pipe_s;

typedef struct {
    pipe_s *P;
    pthread_t th;
    tern_tok_encoder *enc;
    data_buf text, scratch;
} worker;

struct pipe_s {
    const tern_prepare_opts *o;
    const tern_prepare_extra *x;
    const tern_tok *tok;
    data_file *files;
    size_t n_files;
    const char *dir; /* the stage */
    const char *text_key;
    const uint8_t *sep;
    size_t sep_n;
    uint8_t eot_text[64];
    size_t eot_n;
    uint64_t max_line;
    uint8_t seed_le[8];
    int32_t eot;
    size_t vocab;
    double t0;

    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done, cv_space;
    chunk *work_head, *work_tail;
    chunk **ring;
    size_t ring_n;
    uint64_t submitted;
    size_t inflight, inflight_bytes, budget;
    chunk *pack; /* small chunks gathered, not yet handed over (the reader's) */
    int input_done;
    int failed;
    tern_status fail_st;
    char fail_msg[1024];

    _Atomic uint64_t bytes_read, text_bytes, docs, tokens;
    uint64_t bytes_total;
    double last_progress;

    /* the writer's */
    tern_shard_writer *w[2];
    size_t next_index[2];
    tern_manifest_shard *shards;
    size_t n_shards, cap_shards;
    docbuf cur, held;
    uint64_t kept, split_docs[2];
    uint64_t *set; /* --dedup: the keys of documents seen, open addressing, 0 = empty */
    size_t set_cap, set_n;
    uint64_t count[N_NOTES];
    char ex[N_NOTES][N_EXAMPLES][320];
    tern_manifest_source *src; /* per input argument */
    uint8_t *src_fmt;          /* FMT_ bits seen per source */
};

static const char *split_name(tern_split s) { return s == TERN_SPLIT_VAL ? "val" : "train"; }

/* ---- failing from any thread ---- */

static void set_fail(pipe_s *P, tern_status st) {
    pthread_mutex_lock(&P->mu);
    if (!P->failed) {
        P->failed = 1;
        P->fail_st = st;
        snprintf(P->fail_msg, sizeof P->fail_msg, "%s", tern_errmsg());
    }
    pthread_cond_broadcast(&P->cv_work);
    pthread_cond_broadcast(&P->cv_done);
    pthread_cond_broadcast(&P->cv_space);
    pthread_mutex_unlock(&P->mu);
}

/* ---- shards (the writer thread) ---- */

static char *shard_name(tern_split s, size_t index) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%06zu.bin", split_name(s), index);
    return strdup(buf);
}

static tern_status close_shard(pipe_s *P, tern_split s) {
    if (!P->w[s]) return TERN_OK;
    uint64_t n;
    uint8_t sum[TERN_HASH_BYTES];
    tern_status st = tern_shard_writer_close(P->w[s], &n, sum);
    P->w[s] = NULL;
    if (st != TERN_OK) return st;
    if (P->n_shards == P->cap_shards) {
        tern_manifest_shard *x = data_grow(P->shards, &P->cap_shards, sizeof *x, 16);
        if (!x) return tern_err(TERN_ENOMEM, "out of memory");
        P->shards = x;
    }
    char *name = shard_name(s, P->next_index[s] - 1);
    if (!name) return tern_err(TERN_ENOMEM, "out of memory");
    tern_manifest_shard *e = &P->shards[P->n_shards++];
    e->file = name;
    e->split = s;
    e->n_tokens = n;
    memcpy(e->checksum, sum, TERN_HASH_BYTES);
    return TERN_OK;
}

static tern_status open_shard(pipe_s *P, tern_split s) {
    char *name = shard_name(s, P->next_index[s]);
    char *path = name ? tern_path_join(P->dir, name) : NULL;
    char ident[300];
    snprintf(ident, sizeof ident, "shard %s", name ? name : "");
    tern_status st = path ? tern_shard_writer_open(&P->w[s], path, P->vocab, P->o->key, ident) : tern_err(TERN_ENOMEM, "out of memory");
    free(name);
    free(path);
    if (st == TERN_OK) P->next_index[s]++;
    return st;
}

/* Appends ids to a split's shards, starting a new shard every shard_tokens. */
static tern_status emit(pipe_s *P, tern_split s, const int32_t *ids, size_t n) {
    atomic_fetch_add_explicit(&P->tokens, n, memory_order_relaxed);
    while (n) {
        if (!P->w[s]) TERN_TRY(open_shard(P, s));
        uint64_t room = P->o->shard_tokens - tern_shard_writer_count(P->w[s]);
        size_t k = room < n ? (size_t)room : n;
        TERN_TRY(tern_shard_writer_add(P->w[s], ids, k));
        ids += k;
        n -= k;
        if (tern_shard_writer_count(P->w[s]) == P->o->shard_tokens) TERN_TRY(close_shard(P, s));
    }
    return TERN_OK;
}

/* ---- held documents ---- */

static tern_status docbuf_add(pipe_s *P, docbuf *b, const int32_t *ids, size_t n) {
    if (!P->o->key && b->n + n > DOC_MEM_TOKENS) {
        if (!b->spill) {
            b->spill = fopen(b->spill_path, "w+b");
            if (!b->spill) return tern_err(TERN_EIO, "%s: cannot create: %s", b->spill_path, strerror(errno));
        }
        if (b->n && fwrite(b->mem, sizeof(int32_t), b->n, b->spill) != b->n)
            return tern_err(TERN_EIO, "%s: write failed: %s", b->spill_path, strerror(errno));
        b->spilled += b->n;
        b->n = 0;
        if (n > DOC_MEM_TOKENS) {
            if (fwrite(ids, sizeof(int32_t), n, b->spill) != n) return tern_err(TERN_EIO, "%s: write failed: %s", b->spill_path, strerror(errno));
            b->spilled += n;
            return TERN_OK;
        }
    }
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) cap *= 2;
        int32_t *x = malloc(cap * sizeof *x);
        if (!x) return tern_err(TERN_ENOMEM, "out of memory holding a document of %zu tokens", b->n + n);
        if (b->n) memcpy(x, b->mem, b->n * sizeof *x);
        if (b->mem) sodium_memzero(b->mem, b->cap * sizeof *x); /* they may be a sealed run's */
        free(b->mem);
        b->mem = x;
        b->cap = cap;
    }
    memcpy(b->mem + b->n, ids, n * sizeof *ids);
    b->n += n;
    return TERN_OK;
}

static uint64_t docbuf_count(const docbuf *b) { return b->spilled + b->n; }

typedef tern_status (*ids_fn)(pipe_s *P, void *ctx, const int32_t *ids, size_t n);

static tern_status docbuf_replay(pipe_s *P, docbuf *b, ids_fn fn, void *ctx) {
    if (b->spilled) {
        int32_t *tmp = malloc((size_t)(1 << 16) * sizeof *tmp);
        if (!tmp) return tern_err(TERN_ENOMEM, "out of memory");
        tern_status st = TERN_OK;
        if (fflush(b->spill) != 0 || fseek(b->spill, 0, SEEK_SET) != 0)
            st = tern_err(TERN_EIO, "%s: cannot read it back: %s", b->spill_path, strerror(errno));
        for (uint64_t left = b->spilled; st == TERN_OK && left;) {
            size_t k = left < (1 << 16) ? (size_t)left : (size_t)1 << 16;
            if (fread(tmp, sizeof *tmp, k, b->spill) != k) st = tern_err(TERN_EIO, "%s: read failed", b->spill_path);
            else st = fn(P, ctx, tmp, k);
            left -= k;
        }
        free(tmp);
        TERN_TRY(st);
    }
    return b->n ? fn(P, ctx, b->mem, b->n) : TERN_OK;
}

static tern_status docbuf_reset(docbuf *b) {
    b->n = 0;
    b->active = 0;
    if (b->spilled) {
        b->spilled = 0;
        if (fseek(b->spill, 0, SEEK_SET) != 0 || ftruncate(fileno(b->spill), 0) != 0)
            return tern_err(TERN_EIO, "%s: cannot empty it: %s", b->spill_path, strerror(errno));
    }
    return TERN_OK;
}

static void docbuf_free(docbuf *b) {
    if (b->mem) sodium_memzero(b->mem, b->cap * sizeof *b->mem);
    free(b->mem);
    if (b->spill) fclose(b->spill);
    if (b->spill_path) unlink(b->spill_path);
    free(b->spill_path);
    memset(b, 0, sizeof *b);
}

/* ---- documents (the writer thread) ---- */

/* A document or line, for messages: "FILE", "FILE:LINE" or "FILE (document N)". */
static void where(const pipe_s *P, char *out, size_t cap, uint32_t file, uint64_t line, int jsonl) {
    const char *path = P->files[file].path;
    if (!strcmp(path, "-")) path = "standard input";
    if (jsonl) snprintf(out, cap, "%s:%llu", path, (unsigned long long)line);
    else if (P->sep) snprintf(out, cap, "%s (document %llu)", path, (unsigned long long)line);
    else snprintf(out, cap, "%s", path);
}

static void note(pipe_s *P, int kind, uint32_t source, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void note(pipe_s *P, int kind, uint32_t source, const char *fmt, ...) {
    uint64_t k = P->count[kind]++;
    if (kind < TERN_SKIP_N) P->src[source].skipped[kind]++;
    if (k >= N_EXAMPLES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->ex[kind][k], sizeof P->ex[kind][k], fmt, ap);
    va_end(ap);
}

static int looks_binary(const data_stats *s, uint64_t n) { return s->nul > 0 || (double)s->bad_utf8 > BINARY_BAD_SHARE * (double)n; }

static tern_status refuse_binary(const char *w, const data_stats *s, uint64_t n) {
    if (s->nul)
        return tern_err(TERN_EFORMAT, "%s looks binary, not text: it holds NUL bytes; give --allow-binary to prepare it anyway", w);
    return tern_err(TERN_EFORMAT, "%s looks binary, not text: %.0f%% of its %llu bytes are not UTF-8; give --allow-binary to prepare it anyway",
                    w, 100.0 * (double)s->bad_utf8 / (double)n, (unsigned long long)n);
}

/* --dedup: 1 when key was seen before, else records it. */
static tern_status seen_before(pipe_s *P, uint64_t key, int *seen) {
    if (!key) key = 1;
    if (2 * (P->set_n + 1) > P->set_cap) {
        size_t cap = P->set_cap ? P->set_cap * 2 : (size_t)1 << 16;
        uint64_t *x = calloc(cap, sizeof *x);
        if (!x) return tern_err(TERN_ENOMEM, "out of memory for --dedup's table of %zu documents", P->set_n);
        for (size_t i = 0; i < P->set_cap; i++) {
            if (!P->set[i]) continue;
            size_t j = (size_t)(P->set[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
            while (x[j]) j = (j + 1) & (cap - 1);
            x[j] = P->set[i];
        }
        free(P->set);
        P->set = x;
        P->set_cap = cap;
    }
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ull) & (P->set_cap - 1);
    while (P->set[j]) {
        if (P->set[j] == key) return *seen = 1, TERN_OK;
        j = (j + 1) & (P->set_cap - 1);
    }
    P->set[j] = key;
    P->set_n++;
    *seen = 0;
    return TERN_OK;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)p[i] << (8 * i);
    return u;
}

/* The split rule of docs/FORMATS.md: val when (u >> 11) * 2^-53 < F, u the hash's first 8 bytes. */
static tern_split hash_split(const pipe_s *P, const uint8_t *hash) {
    return (double)(le64(hash) >> 11) * 0x1p-53 < P->o->val_fraction ? TERN_SPLIT_VAL : TERN_SPLIT_TRAIN;
}

static tern_status emit_fn(pipe_s *P, void *ctx, const int32_t *ids, size_t n) { return emit(P, *(tern_split *)ctx, ids, n); }

/* <|endoftext|>, then the document's tokens: ids[0..n) or a held docbuf's */
static tern_status emit_doc(pipe_s *P, tern_split s, const int32_t *ids, size_t n, docbuf *b) {
    P->split_docs[s]++;
    TERN_TRY(emit(P, s, &P->eot, 1));
    if (!b) return emit(P, s, ids, n);
    TERN_TRY(docbuf_replay(P, b, emit_fn, &s));
    return docbuf_reset(b);
}

typedef struct {
    uint64_t at, ntrain;
} tail_ctx;

static tern_status tail_fn(pipe_s *P, void *ctx, const int32_t *ids, size_t n) {
    tail_ctx *t = ctx;
    size_t k = t->at < t->ntrain ? (t->ntrain - t->at < n ? (size_t)(t->ntrain - t->at) : n) : 0;
    if (k) TERN_TRY(emit(P, TERN_SPLIT_TRAIN, ids, k));
    if (n > k) TERN_TRY(emit(P, TERN_SPLIT_VAL, ids + k, n - k));
    t->at += n;
    return TERN_OK;
}

/* The only document kept: of its N tokens (<|endoftext|> included) the last floor(F*N) go to val. */
static tern_status emit_tail(pipe_s *P) {
    docbuf *b = &P->held;
    uint64_t total = 1 + docbuf_count(b);
    uint64_t nval = (uint64_t)((double)total * P->o->val_fraction);
    tail_ctx t = {0, total - nval};
    P->split_docs[TERN_SPLIT_TRAIN] = 1;
    TERN_TRY(tail_fn(P, &t, &P->eot, 1));
    TERN_TRY(docbuf_replay(P, b, tail_fn, &t));
    return docbuf_reset(b);
}

/* A whole document: its text's size and statistics, hash, and tokens (ids or the current docbuf). */
typedef struct {
    uint64_t text_n;
    data_stats stats;
    int eot_text;
    const uint8_t *hash;
    const int32_t *ids;
    size_t n_ids;
    docbuf *buf;
    uint32_t file;
    uint64_t line;
    int jsonl;
} doc;

static tern_status decide(pipe_s *P, const doc *d) {
    const tern_prepare_opts *o = P->o;
    const tern_prepare_extra *x = P->x;
    uint32_t source = P->files[d->file].source;
    char w[300];
    where(P, w, sizeof w, d->file, d->line, d->jsonl);
    tern_status st = TERN_OK;
    int keep = 0, binary = looks_binary(&d->stats, d->text_n);
    if (binary && !x->allow_binary) return refuse_binary(w, &d->stats, d->text_n);
    if (d->text_n == 0 || d->stats.blank) {
        if (d->jsonl || !P->sep) note(P, TERN_SKIP_EMPTY, source, "%s", w); /* between separators: not a document */
    } else if (d->text_n < x->min_bytes) {
        note(P, TERN_SKIP_SHORT, source, "%s (%llu bytes)", w, (unsigned long long)d->text_n);
    } else {
        int dup = 0;
        if (x->dedup) st = seen_before(P, le64(d->hash + 8), &dup);
        if (st == TERN_OK && dup) note(P, TERN_SKIP_DUPLICATE, source, "%s", w);
        keep = st == TERN_OK && !dup;
    }
    if (!keep) return d->buf ? (st == TERN_OK ? docbuf_reset(d->buf) : st) : st;
    if (binary) note(P, NOTE_BINARY, source, "%s", w); /* kept as --allow-binary asks */
    else if (d->stats.bad_utf8) note(P, NOTE_BAD_UTF8, source, "%s", w);
    if (d->eot_text) note(P, NOTE_EOT_TEXT, source, "%s", w);
    uint64_t ntok = d->buf ? docbuf_count(d->buf) : d->n_ids;
    tern_manifest_source *src = &P->src[source];
    src->documents++;
    src->bytes += d->text_n;
    src->tokens += 1 + ntok;
    P->kept++;
    atomic_fetch_add_explicit(&P->docs, 1, memory_order_relaxed);
    if (o->val_fraction == 0) return emit_doc(P, TERN_SPLIT_TRAIN, d->ids, d->n_ids, d->buf);
    if (P->kept == 1) {
        /* held until a second document is kept: a lone document is split by position instead */
        docbuf *h = &P->held;
        if (d->buf) { /* the current document becomes the held one, hash and spill file and all */
            docbuf t = *h;
            *h = *d->buf;
            *d->buf = t;
            return docbuf_reset(d->buf);
        }
        memcpy(h->hash, d->hash, 16);
        return docbuf_add(P, h, d->ids, d->n_ids);
    }
    if (P->kept == 2) TERN_TRY(emit_doc(P, hash_split(P, P->held.hash), NULL, 0, &P->held));
    return emit_doc(P, hash_split(P, d->hash), d->ids, d->n_ids, d->buf);
}

static tern_status write_seg(pipe_s *P, chunk *c, seg *g) {
    int jsonl = c->fmt == FMT_JSONL;
    if (g->skip >= 0 || g->status >= 0) {
        char w[300];
        where(P, w, sizeof w, g->file, g->line, jsonl);
        uint32_t source = P->files[g->file].source;
        if (g->skip == TERN_SKIP_TOO_LONG) note(P, TERN_SKIP_TOO_LONG, source, "%s (%llu bytes)", w, (unsigned long long)g->long_len);
        else if (g->why) note(P, g->status, source, "%s (%s, at byte %zu)", w, g->why, g->err_at);
        else note(P, g->status, source, "%s", w);
        return TERN_OK;
    }
    const int32_t *ids = c->ids.p + g->ids_off;
    if ((g->flags & SEG_START) && (g->flags & SEG_END)) {
        doc d = {.text_n = g->text_n, .stats = g->stats, .eot_text = g->eot_text, .hash = g->hash, .ids = ids, .n_ids = g->ids_n,
                 .file = g->file, .line = g->line, .jsonl = jsonl};
        return decide(P, &d);
    }
    /* a document in several segments (plain text only): its hash and tokens gather in cur */
    docbuf *b = &P->cur;
    if (g->flags & SEG_START) {
        TERN_TRY(docbuf_reset(b));
        b->active = 1;
        tern_hash_init(&b->h);
        tern_hash_update(&b->h, P->seed_le, 8);
        b->text_n = 0;
        b->stats = (data_stats){.blank = 1};
        b->eot_text = 0;
        b->file = g->file;
        b->line = g->line;
    }
    tern_hash_update(&b->h, c->raw.p + g->off, g->len);
    b->text_n += g->text_n;
    b->stats.nul += g->stats.nul;
    b->stats.bad_utf8 += g->stats.bad_utf8;
    b->stats.blank &= g->stats.blank;
    b->eot_text |= g->eot_text;
    if (b->stats.nul && !P->x->allow_binary) { /* no need to read the rest */
        char w[300];
        where(P, w, sizeof w, b->file, b->line, 0);
        return refuse_binary(w, &b->stats, b->text_n);
    }
    TERN_TRY(docbuf_add(P, b, ids, g->ids_n));
    if (!(g->flags & SEG_END)) return TERN_OK;
    uint8_t full[TERN_HASH_BYTES];
    tern_hash_final(&b->h, full);
    memcpy(b->hash, full, 16);
    doc d = {.text_n = b->text_n, .stats = b->stats, .eot_text = b->eot_text, .hash = b->hash, .buf = b, .file = b->file, .line = b->line};
    return decide(P, &d);
}

static void chunk_free(chunk *c) {
    if (!c) return;
    free(c->raw.p);
    free(c->segs);
    tern_ids_free(&c->ids);
    free(c);
}

static void *writer_main(void *arg) {
    pipe_s *P = arg;
    for (uint64_t seq = 0;; seq++) {
        pthread_mutex_lock(&P->mu);
        chunk *c;
        while (!P->failed && !((c = P->ring[seq % P->ring_n]) && c->seq == seq && c->done) && !(P->input_done && seq == P->submitted))
            pthread_cond_wait(&P->cv_done, &P->mu);
        if (P->failed || (P->input_done && seq == P->submitted)) {
            pthread_mutex_unlock(&P->mu);
            break;
        }
        P->ring[seq % P->ring_n] = NULL;
        pthread_mutex_unlock(&P->mu);
        tern_status st = TERN_OK;
        for (size_t i = 0; i < c->n_segs && st == TERN_OK; i++) st = write_seg(P, c, &c->segs[i]);
        pthread_mutex_lock(&P->mu);
        P->inflight--;
        P->inflight_bytes -= c->raw.cap;
        pthread_cond_broadcast(&P->cv_space);
        pthread_mutex_unlock(&P->mu);
        chunk_free(c);
        if (st != TERN_OK) {
            set_fail(P, st);
            break;
        }
    }
    return NULL;
}

/* ---- tokenizing (the workers) ---- */

static tern_status work_chunk(worker *W, chunk *c) {
    pipe_s *P = W->P;
    const tern_prepare_extra *x = P->x;
    for (size_t i = 0; i < c->n_segs; i++) {
        seg *g = &c->segs[i];
        g->status = -1;
        if (g->skip >= 0) continue;
        const uint8_t *t = c->raw.p + g->off;
        size_t tn = g->len;
        if (c->fmt == FMT_JSONL) {
            data_jsonl_result r;
            TERN_TRY(data_jsonl_text(t, tn, P->text_key, &W->text, &W->scratch, &r));
            if (r.st != TERN_JSONL_OK) {
                static const int8_t reason[] = {[TERN_JSONL_INVALID_JSON] = TERN_SKIP_INVALID_JSON,
                                                [TERN_JSONL_MISSING_KEY] = TERN_SKIP_MISSING_KEY,
                                                [TERN_JSONL_NOT_STRING] = TERN_SKIP_NOT_STRING,
                                                [TERN_JSONL_INVALID_UTF8] = TERN_SKIP_INVALID_UTF8};
                g->status = reason[r.st];
                g->err_at = r.at;
                g->why = r.why;
                continue;
            }
            t = W->text.p;
            tn = W->text.n;
        }
        g->text_n = tn;
        g->stats = (data_stats){.blank = 1};
        data_text_stats(t, tn, &g->stats);
        g->eot_text = P->eot_n && tn >= P->eot_n && memmem(t, tn, P->eot_text, P->eot_n) != NULL;
        g->ids_off = c->ids.n;
        g->ids_n = 0;
        if ((g->flags & SEG_START) && (g->flags & SEG_END)) {
            tern_hasher h;
            uint8_t full[TERN_HASH_BYTES];
            tern_hash_init(&h);
            tern_hash_update(&h, P->seed_le, 8);
            tern_hash_update(&h, t, tn);
            tern_hash_final(&h, full);
            memcpy(g->hash, full, 16);
            /* documents the writer will leave out need no tokens */
            if (g->stats.blank || tn < x->min_bytes || (!x->allow_binary && looks_binary(&g->stats, tn))) continue;
        }
        TERN_TRY(tern_tok_encoder_encode(W->enc, t, tn, &c->ids));
        g->ids_n = c->ids.n - g->ids_off;
    }
    return TERN_OK;
}

static void *worker_main(void *arg) {
    worker *W = arg;
    pipe_s *P = W->P;
    for (;;) {
        pthread_mutex_lock(&P->mu);
        while (!P->failed && !P->work_head && !P->input_done) pthread_cond_wait(&P->cv_work, &P->mu);
        chunk *c = P->failed ? NULL : P->work_head;
        if (c) {
            P->work_head = c->next;
            if (!P->work_head) P->work_tail = NULL;
        }
        pthread_mutex_unlock(&P->mu);
        if (!c) break;
        tern_status st = work_chunk(W, c);
        pthread_mutex_lock(&P->mu);
        c->done = 1;
        pthread_cond_broadcast(&P->cv_done);
        pthread_mutex_unlock(&P->mu);
        if (st != TERN_OK) {
            set_fail(P, st);
            break;
        }
    }
    return NULL;
}

/* ---- reading (the calling thread) ---- */

static void progress(pipe_s *P, int done) {
    if (!P->x->progress) return;
    double now = tern_now();
    if (!done && now - P->last_progress < 0.2) return;
    P->last_progress = now;
    tern_prepare_progress pr = {
        .bytes_read = atomic_load(&P->bytes_read),
        .bytes_total = P->bytes_total,
        .text_bytes = atomic_load(&P->text_bytes),
        .documents = atomic_load(&P->docs),
        .tokens = atomic_load(&P->tokens),
        .seconds = now - P->t0,
        .done = done,
    };
    P->x->progress(P->x->ctx, &pr);
}

static tern_status check_stop(pipe_s *P) {
    if (P->x->stop && *P->x->stop) return tern_err(TERN_EINVAL, "interrupted; nothing was written");
    pthread_mutex_lock(&P->mu);
    int failed = P->failed;
    pthread_mutex_unlock(&P->mu);
    return failed ? TERN_EIO : TERN_OK; /* the failing thread's message is reported */
}

static chunk *chunk_new(uint32_t file, int fmt) {
    chunk *c = calloc(1, sizeof *c);
    if (c) {
        c->file = file;
        c->fmt = fmt;
    }
    return c;
}

static tern_status reserve(data_buf *b, size_t n) {
    return data_buf_reserve(b, n, CHUNK) ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory reading %zu bytes", b->n + n);
}

static tern_status add_seg(chunk *c, size_t off, size_t len, uint8_t flags, uint64_t line, int8_t skip) {
    if (c->n_segs == c->cap_segs) {
        seg *x = data_grow(c->segs, &c->cap_segs, sizeof *x, 64);
        if (!x) return tern_err(TERN_ENOMEM, "out of memory");
        c->segs = x;
    }
    c->segs[c->n_segs++] = (seg){.off = off, .len = len, .flags = flags, .line = line, .skip = skip, .status = -1, .file = c->file};
    return TERN_OK;
}

/* Hands c to the workers, waiting while too much is in flight. c is theirs (or freed) after. */
static tern_status hand_over(pipe_s *P, chunk *c) {
    pthread_mutex_lock(&P->mu);
    while (!P->failed && (P->inflight >= P->ring_n || (P->inflight && P->inflight_bytes + c->raw.cap > P->budget))) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct timespec ts = {tv.tv_sec, tv.tv_usec * 1000 + 200000000L};
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&P->cv_space, &P->mu, &ts);
        pthread_mutex_unlock(&P->mu);
        progress(P, 0);
        tern_status st = P->x->stop && *P->x->stop ? check_stop(P) : TERN_OK;
        pthread_mutex_lock(&P->mu);
        if (st != TERN_OK) {
            pthread_mutex_unlock(&P->mu);
            chunk_free(c);
            return st;
        }
    }
    if (P->failed) {
        pthread_mutex_unlock(&P->mu);
        chunk_free(c);
        return TERN_EIO;
    }
    c->seq = P->submitted++;
    P->ring[c->seq % P->ring_n] = c;
    P->inflight++;
    P->inflight_bytes += c->raw.cap;
    if (P->work_tail) P->work_tail->next = c;
    else P->work_head = c;
    P->work_tail = c;
    pthread_cond_signal(&P->cv_work);
    pthread_mutex_unlock(&P->mu);
    return TERN_OK;
}

/* Hands c on in input order. Small chunks (small files, or the ends of files) of one format are
 * gathered into one, so that a folder of many small documents costs no more per byte than one file
 * holding them; any other chunk first sends what was gathered. c is not the caller's after. */
static tern_status submit(pipe_s *P, chunk *c) {
    if (!c->n_segs) {
        chunk_free(c);
        return TERN_OK;
    }
    chunk *pk = P->pack;
    int small = c->raw.n < CHUNK / 2;
    if (pk && (!small || pk->fmt != c->fmt || pk->raw.n + c->raw.n > CHUNK)) {
        P->pack = NULL;
        tern_status st = hand_over(P, pk);
        if (st != TERN_OK) {
            chunk_free(c);
            return st;
        }
        pk = NULL;
    }
    if (!small) return hand_over(P, c);
    if (!pk) {
        P->pack = c;
        return TERN_OK;
    }
    tern_status st = reserve(&pk->raw, c->raw.n);
    for (size_t i = 0; st == TERN_OK && i < c->n_segs; i++) {
        seg g = c->segs[i];
        g.off += pk->raw.n;
        st = add_seg(pk, g.off, g.len, g.flags, g.line, g.skip);
        if (st == TERN_OK) {
            pk->segs[pk->n_segs - 1].file = g.file;
            pk->segs[pk->n_segs - 1].long_len = g.long_len;
        }
    }
    if (st == TERN_OK) {
        memcpy(pk->raw.p + pk->raw.n, c->raw.p, c->raw.n);
        pk->raw.n += c->raw.n;
    }
    chunk_free(c);
    return st;
}

/* A file being read: the chunk being filled and where the reading stands. */
typedef struct {
    pipe_s *P;
    tern_text_stream *s;
    uint32_t file;
    chunk *c;
    int eof;
    uint64_t raw_seen;
} reading;

/* Reads what the file gives next (at most cap bytes) into buf; *got 0 marks the end. */
static tern_status read_some(reading *r, uint8_t *buf, size_t cap, size_t *got) {
    TERN_TRY(tern_text_stream_read(r->s, buf, cap, got));
    if (!*got) r->eof = 1;
    uint64_t raw = tern_text_stream_raw_bytes(r->s);
    atomic_fetch_add_explicit(&r->P->bytes_read, raw - r->raw_seen, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->P->text_bytes, *got, memory_order_relaxed);
    r->raw_seen = raw;
    progress(r->P, 0);
    return check_stop(r->P);
}

/* Reads until the chunk holds `target` bytes or the file ends. */
static tern_status fill(reading *r, size_t target) {
    data_buf *b = &r->c->raw;
    while (!r->eof && b->n < target) {
        TERN_TRY(reserve(b, target - b->n));
        size_t got;
        TERN_TRY(read_some(r, b->p + b->n, target - b->n, &got));
        b->n += got;
    }
    return TERN_OK;
}

/* Submits the chunk up to byte `keep` and starts the next with the bytes after it. */
static tern_status next_chunk(reading *r, size_t keep) {
    chunk *c = r->c, *n = chunk_new(r->file, c->fmt);
    if (!n) return tern_err(TERN_ENOMEM, "out of memory");
    size_t rest = c->raw.n - keep;
    tern_status st = reserve(&n->raw, rest > CHUNK ? rest : CHUNK);
    if (st != TERN_OK) {
        chunk_free(n);
        return st;
    }
    memcpy(n->raw.p, c->raw.p + keep, rest);
    n->raw.n = rest;
    c->raw.n = keep;
    r->c = n;
    return submit(r->P, c);
}

/* Plain text: one document, or one per separator; cut into segments where pre-tokens end. */
static tern_status read_text(reading *r) {
    pipe_s *P = r->P;
    size_t hold = P->sep_n > 5 ? P->sep_n - 1 : 4; /* bytes that may belong to what follows */
    int open = 0;
    uint64_t doc_no = 1;
    size_t target = CHUNK;
    for (;;) {
        TERN_TRY(fill(r, target));
        chunk *c = r->c;
        size_t pos = 0, n = c->raw.n;
        while (P->sep_n && pos < n) {
            const uint8_t *q = memmem(c->raw.p + pos, n - pos, P->sep, P->sep_n);
            if (!q) break;
            size_t at = (size_t)(q - c->raw.p);
            TERN_TRY(add_seg(c, pos, at - pos, (open ? 0 : SEG_START) | SEG_END, doc_no++, -1));
            open = 0;
            pos = at + P->sep_n;
        }
        if (r->eof) {
            TERN_TRY(add_seg(c, pos, n - pos, (open ? 0 : SEG_START) | SEG_END, doc_no, -1));
            r->c = NULL;
            return submit(P, c);
        }
        size_t q = n - pos > hold ? tern_tok_split_point(c->raw.p + pos, n - pos - (hold - 4)) : 0;
        if (q) {
            TERN_TRY(add_seg(c, pos, q, open ? 0 : SEG_START, doc_no, -1));
            open = 1;
            pos += q;
        }
        if (!c->n_segs) {
            /* no cut yet: one pre-token fills the chunk; read on, as far as tern encodes one */
            if (n > TERN_TOK_MAX_PIECE + hold)
                return tern_err(TERN_EINVAL,
                                "%s: more than %zu bytes with no break between pre-tokens (one run of letters, digits, symbols "
                                "or spaces), more than tern encodes as one pre-token",
                                tern_text_stream_name(r->s), TERN_TOK_MAX_PIECE);
            target = n * 2;
            continue;
        }
        target = CHUNK;
        TERN_TRY(next_chunk(r, pos));
    }
}

static int blank_line(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

/* JSON Lines: a segment per line; blank lines are passed over; a line longer than the limit is
 * read past without being kept. */
static tern_status read_jsonl(reading *r) {
    pipe_s *P = r->P;
    uint64_t line = 0;
    size_t target = CHUNK, pos = 0;
    if (r->c->raw.n >= 3 && !memcmp(r->c->raw.p, "\xEF\xBB\xBF", 3)) pos = 3; /* a byte order mark */
    for (;;) {
        TERN_TRY(fill(r, target));
        chunk *c = r->c;
        size_t n = c->raw.n;
        while (pos < n) {
            const uint8_t *nl = memchr(c->raw.p + pos, '\n', n - pos);
            if (!nl && !r->eof) break;
            size_t end = nl ? (size_t)(nl - c->raw.p) : n, len = end - pos;
            line++;
            if (len > P->max_line) {
                TERN_TRY(add_seg(c, pos, 0, SEG_START | SEG_END, line, TERN_SKIP_TOO_LONG));
                c->segs[c->n_segs - 1].long_len = len;
            } else if (!blank_line(c->raw.p + pos, len)) {
                TERN_TRY(add_seg(c, pos, len, SEG_START | SEG_END, line, -1));
            }
            pos = nl ? end + 1 : n;
        }
        if (r->eof) {
            r->c = NULL;
            return submit(P, c);
        }
        if (n - pos > P->max_line) {
            /* too long to keep: read past its end, counting its bytes */
            line++;
            uint64_t len = n - pos;
            TERN_TRY(add_seg(c, pos, 0, SEG_START | SEG_END, line, TERN_SKIP_TOO_LONG));
            c->raw.n = pos;
            uint8_t *tmp = malloc(CHUNK);
            if (!tmp) return tern_err(TERN_ENOMEM, "out of memory");
            size_t got = 0, k = 0;
            const uint8_t *nl = NULL;
            tern_status st = TERN_OK;
            while (st == TERN_OK && !nl && !r->eof) {
                st = read_some(r, tmp, CHUNK, &got);
                nl = memchr(tmp, '\n', got);
                k = nl ? (size_t)(nl - tmp) : got;
                len += k;
            }
            c->segs[c->n_segs - 1].long_len = len;
            /* the bytes after its newline begin the next chunk */
            if (st == TERN_OK && nl) {
                c->raw.n = pos;
                st = reserve(&c->raw, got - k - 1);
                if (st == TERN_OK) memcpy(c->raw.p + pos, tmp + k + 1, got - k - 1);
                c->raw.n = pos + got - k - 1;
            }
            free(tmp);
            TERN_TRY(st);
            continue;
        }
        if (pos == 0) { /* one line fills the chunk: read on */
            target = n * 2 > P->max_line + 1 ? (size_t)P->max_line + 1 : n * 2;
            continue;
        }
        target = CHUNK;
        TERN_TRY(next_chunk(r, pos));
        pos = 0;
    }
}

/* The format of a file: as asked, else by its name (.jsonl or .ndjson, before any .gz, .zst or
 * .zstd), else JSON Lines when its first line that is not blank is a JSON object (or starts with
 * '{' and runs past the first chunk). b holds the file's first bytes. */
static int detect_format(const pipe_s *P, const char *path, const data_buf *b, int eof) {
    if (P->x->format == TERN_PREPARE_TEXT) return FMT_TEXT;
    if (P->x->format == TERN_PREPARE_JSONL) return FMT_JSONL;
    size_t n = strlen(path);
    static const char *const zs[] = {".gz", ".zst", ".zstd"}, *const js[] = {".jsonl", ".ndjson"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(zs[i]);
        if (n > k && !strcmp(path + n - k, zs[i])) {
            n -= k;
            break;
        }
    }
    for (int i = 0; i < 2; i++) {
        size_t k = strlen(js[i]);
        if (n > k && !strncmp(path + n - k, js[i], k)) return FMT_JSONL;
    }
    size_t i = b->n >= 3 && !memcmp(b->p, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < b->n && (b->p[i] == ' ' || b->p[i] == '\t' || b->p[i] == '\r' || b->p[i] == '\n')) i++;
    if (i >= b->n || b->p[i] != '{') return FMT_TEXT;
    const uint8_t *nl = memchr(b->p + i, '\n', b->n - i);
    if (!nl && !eof) return FMT_JSONL;
    size_t end = nl ? (size_t)(nl - b->p) : b->n;
    data_buf t = {0}, sc = {0};
    data_jsonl_result r;
    tern_status st = data_jsonl_text(b->p + i, end - i, P->text_key, &t, &sc, &r);
    free(t.p);
    free(sc.p);
    return st == TERN_OK && (r.st == TERN_JSONL_OK || r.st == TERN_JSONL_MISSING_KEY || r.st == TERN_JSONL_NOT_STRING) ? FMT_JSONL
                                                                                                                        : FMT_TEXT;
}

static tern_status read_file(pipe_s *P, uint32_t fi) {
    const data_file *f = &P->files[fi];
    reading r = {.P = P, .file = fi};
    TERN_TRY(tern_text_stream_open(&r.s, f->path));
    P->src[f->source].files++;
    r.c = chunk_new(fi, 0);
    tern_status st = r.c ? fill(&r, CHUNK) : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) {
        r.c->fmt = detect_format(P, f->path, &r.c->raw, r.eof);
        P->src_fmt[f->source] |= (uint8_t)r.c->fmt;
        st = r.c->fmt == FMT_JSONL ? read_jsonl(&r) : read_text(&r);
    }
    chunk_free(r.c);
    tern_text_stream_close(r.s);
    return st;
}

/* ---- the whole ---- */

static void warn_kind(pipe_s *P, int kind) {
    uint64_t n = P->count[kind];
    if (!n || kind == TERN_SKIP_DUPLICATE || !P->x->warn) return; /* duplicates are what --dedup asked for */
    const char *s = n == 1 ? "" : "s", *is = n == 1 ? "is" : "are", *vs = n == 1 ? "s" : "";
    char head[400], ex[N_EXAMPLES * 330 + 64] = "";
    unsigned long long nn = (unsigned long long)n;
    switch (kind) {
    case TERN_SKIP_EMPTY: snprintf(head, sizeof head, "skipped %llu empty document%s (no text, or only white space)", nn, s); break;
    case TERN_SKIP_SHORT:
        snprintf(head, sizeof head, "skipped %llu document%s shorter than --min-bytes %llu", nn, s, (unsigned long long)P->x->min_bytes);
        break;
    case TERN_SKIP_INVALID_JSON: snprintf(head, sizeof head, "skipped %llu line%s that %s not one JSON object", nn, s, is); break;
    case TERN_SKIP_MISSING_KEY: snprintf(head, sizeof head, "skipped %llu line%s with no \"%s\" member", nn, s, P->text_key); break;
    case TERN_SKIP_NOT_STRING: snprintf(head, sizeof head, "skipped %llu line%s whose \"%s\" is not a string", nn, s, P->text_key); break;
    case TERN_SKIP_INVALID_UTF8: snprintf(head, sizeof head, "skipped %llu line%s that %s not UTF-8 text", nn, s, is); break;
    case TERN_SKIP_TOO_LONG:
        snprintf(head, sizeof head, "skipped %llu line%s longer than --max-line-bytes %llu", nn, s, (unsigned long long)P->max_line);
        break;
    case NOTE_BINARY: snprintf(head, sizeof head, "prepared %llu document%s that look%s binary (--allow-binary)", nn, s, vs); break;
    case NOTE_BAD_UTF8:
        snprintf(head, sizeof head, "%llu document%s hold%s bytes that are not UTF-8, encoded byte by byte", nn, s, vs);
        break;
    case NOTE_EOT_TEXT:
        snprintf(head, sizeof head,
                 "%llu document%s contain%s the text %.*s, encoded as ordinary text (--doc-separator '%.*s' splits documents there)", nn,
                 s, vs, (int)P->eot_n, (const char *)P->eot_text, (int)P->eot_n, (const char *)P->eot_text);
        break;
    default: return;
    }
    for (uint64_t i = 0; i < n && i < N_EXAMPLES; i++) {
        strcat(ex, i ? ", " : "");
        strcat(ex, P->ex[kind][i]);
    }
    if (n > N_EXAMPLES) snprintf(ex + strlen(ex), sizeof ex - strlen(ex), ", and %llu more", (unsigned long long)(n - N_EXAMPLES));
    char msg[sizeof head + sizeof ex + 4];
    snprintf(msg, sizeof msg, "%s: %s", head, ex);
    P->x->warn(P->x->ctx, msg);
}

/* After the last chunk: the lone held document, the last shards, and the manifest. */
static tern_status finish(pipe_s *P, tern_manifest *m) {
    const tern_prepare_opts *o = P->o;
    const tern_prepare_extra *x = P->x;
    if (P->kept == 0) {
        char why[512] = "";
        for (int r = 0; r < TERN_SKIP_N; r++)
            if (P->count[r])
                snprintf(why + strlen(why), sizeof why - strlen(why), "%s%llu %s", why[0] ? ", " : "", (unsigned long long)P->count[r],
                         tern_skip_name((tern_skip)r));
        if (why[0]) return tern_err(TERN_EINVAL, "nothing to prepare: no document was kept (skipped: %s)", why);
        return tern_err(TERN_EINVAL, "nothing to prepare: the inputs hold no documents");
    }
    if (P->kept == 1 && o->val_fraction > 0) TERN_TRY(emit_tail(P));
    for (int s = 0; s < 2; s++) TERN_TRY(close_shard(P, (tern_split)s));
    /* train shards first, then val, each in the order written */
    tern_manifest_shard *sorted = malloc((P->n_shards ? P->n_shards : 1) * sizeof *sorted);
    if (!sorted) return tern_err(TERN_ENOMEM, "out of memory");
    size_t k = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < P->n_shards; i++)
            if ((int)P->shards[i].split == s) sorted[k++] = P->shards[i];
    free(P->shards);
    m->shards = sorted;
    m->n_shards = P->n_shards;
    P->shards = NULL;
    P->n_shards = 0;
    memcpy(m->tokenizer_hash, tern_tok_hash(P->tok), TERN_HASH_BYTES);
    m->vocab_size = P->vocab;
    m->eot = P->eot;
    m->bytes_per_token = tern_shard_bytes_per_token(P->vocab);
    m->val_fraction = o->val_fraction;
    m->seed = o->seed;
    m->docs[0] = P->split_docs[0];
    m->docs[1] = P->split_docs[1];
    m->val_split = o->val_fraction == 0 ? TERN_VAL_SPLIT_NONE : P->kept == 1 ? TERN_VAL_SPLIT_TAIL : TERN_VAL_SPLIT_DOCUMENTS;
    m->has_prepare = 1;
    m->text_key = strdup(P->text_key);
    m->doc_separator = x->doc_separator ? strdup(x->doc_separator) : NULL;
    m->min_bytes = x->min_bytes;
    m->dedup = x->dedup != 0;
    for (int r = 0; r < TERN_SKIP_N; r++) m->skipped[r] = P->count[r];
    m->binary_documents = P->count[NOTE_BINARY];
    m->sources = P->src;
    m->n_sources = o->n_files;
    P->src = NULL;
    for (size_t i = 0; i < m->n_sources; i++) {
        static const char *const fmts[] = {"text", "text", "jsonl", "mixed"};
        m->sources[i].format = strdup(fmts[P->src_fmt[i] & 3]);
        if (!m->sources[i].format) return tern_err(TERN_ENOMEM, "out of memory");
    }
    if (!m->text_key || (x->doc_separator && !m->doc_separator)) return tern_err(TERN_ENOMEM, "out of memory");
    return tern_manifest_write(m, P->dir, o->key);
}

static tern_status check_opts(const tern_prepare_opts *o, const tern_prepare_extra *x) {
    if (!o->n_files) return tern_err(TERN_EINVAL, "no inputs to prepare");
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return tern_err(TERN_EINVAL, "the validation fraction must be at least 0 and below 1, got %g", o->val_fraction);
    if (o->shard_tokens < 1) return tern_err(TERN_EINVAL, "a shard must hold at least 1 token");
    if (x->threads < 0 || x->threads > 1024) return tern_err(TERN_EINVAL, "threads must be from 1 to 1024 (0: one per core), got %d", x->threads);
    if (x->text_key && !x->text_key[0]) return tern_err(TERN_EINVAL, "the text key must not be empty");
    if (x->doc_separator && !x->doc_separator[0]) return tern_err(TERN_EINVAL, "the document separator must not be empty");
    if (x->max_line_bytes > ((uint64_t)1 << 30)) return tern_err(TERN_EINVAL, "the line limit is at most 1 GiB (1073741824 bytes)");
    return TERN_OK;
}

tern_status tern_data_prepare(const tern_prepare_opts *o, tern_manifest *out) { return tern_data_prepare_extra(o, NULL, out); }

tern_status tern_data_prepare_extra(const tern_prepare_opts *o, const tern_prepare_extra *x, tern_manifest *out) {
    static const tern_prepare_extra defaults;
    if (!x) x = &defaults;
    if (out) memset(out, 0, sizeof *out);
    TERN_TRY(check_opts(o, x));
    data_stage stage;
    tern_status st = data_stage_check(&stage, o->out_dir, x->force);
    pipe_s *P = calloc(1, sizeof *P);
    if (st == TERN_OK && !P) st = tern_err(TERN_ENOMEM, "out of memory");
    tern_tok *tok = NULL;
    if (st == TERN_OK) st = data_list_inputs(o->files, o->n_files, &P->files, &P->n_files);
    if (st == TERN_OK) st = tern_tok_load(&tok, o->tokenizer_dir, o->key);
    if (st != TERN_OK) {
        if (P) data_files_free(P->files, P->n_files);
        free(P);
        tern_tok_free(tok);
        data_stage_end(&stage);
        return st;
    }
    /* nothing is created before every input and the tokenizer are known to be there */
    st = data_stage_begin(&stage);
    P->o = o;
    P->x = x;
    P->tok = tok;
    P->dir = stage.stage;
    P->text_key = x->text_key ? x->text_key : "text";
    P->sep = (const uint8_t *)x->doc_separator;
    P->sep_n = x->doc_separator ? strlen(x->doc_separator) : 0;
    P->max_line = x->max_line_bytes ? x->max_line_bytes : TERN_PREPARE_MAX_LINE;
    P->eot = tern_tok_eot(tok);
    P->vocab = tern_tok_vocab_size(tok);
    size_t eot_len;
    const uint8_t *eot_bytes = tern_tok_token(tok, P->eot, &eot_len);
    if (eot_bytes && eot_len <= sizeof P->eot_text) {
        memcpy(P->eot_text, eot_bytes, eot_len);
        P->eot_n = eot_len;
    }
    for (int i = 0; i < 8; i++) P->seed_le[i] = (uint8_t)(o->seed >> (8 * i));
    P->t0 = tern_now();
    P->last_progress = P->t0;
    for (size_t i = 0; i < P->n_files; i++) P->bytes_total += P->files[i].size;
    for (size_t i = 0; i < P->n_files; i++)
        if (!P->files[i].size) P->bytes_total = 0; /* standard input or a pipe: no end to show */
    int nw = x->threads ? x->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nw < 1) nw = 1;
    P->ring_n = 2 * (size_t)nw + 2;
    P->budget = P->ring_n * CHUNK > BUDGET_MIN ? P->ring_n * CHUNK : BUDGET_MIN;
    P->ring = calloc(P->ring_n, sizeof *P->ring);
    P->src = calloc(o->n_files, sizeof *P->src);
    P->src_fmt = calloc(o->n_files, 1);
    worker *ws = calloc((size_t)nw, sizeof *ws);
    if (st == TERN_OK && (!P->ring || !P->src || !P->src_fmt || !ws)) st = tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < o->n_files; i++)
        if (!(P->src[i].path = strdup(o->files[i]))) st = tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) {
        P->cur.spill_path = tern_path_join(stage.stage, ".document.tokens");
        P->held.spill_path = tern_path_join(stage.stage, ".held-document.tokens");
        if (!P->cur.spill_path || !P->held.spill_path) st = tern_err(TERN_ENOMEM, "out of memory");
    }
    for (int i = 0; st == TERN_OK && i < nw; i++) {
        ws[i].P = P;
        st = tern_tok_encoder_init(&ws[i].enc, tok);
    }
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->cv_work, NULL);
    pthread_cond_init(&P->cv_done, NULL);
    pthread_cond_init(&P->cv_space, NULL);
    int started = 0, writer_started = 0;
    pthread_t writer;
    if (st == TERN_OK) {
        if (pthread_create(&writer, NULL, writer_main, P) != 0) st = tern_err(TERN_EIO, "cannot start a thread: %s", strerror(errno));
        else writer_started = 1;
    }
    for (; st == TERN_OK && started < nw; started++)
        if (pthread_create(&ws[started].th, NULL, worker_main, &ws[started]) != 0)
            st = tern_err(TERN_EIO, "cannot start a thread: %s", strerror(errno));
    if (st != TERN_OK) set_fail(P, st);
    for (size_t f = 0; st == TERN_OK && f < P->n_files; f++) st = read_file(P, (uint32_t)f);
    if (st == TERN_OK && P->pack) st = hand_over(P, P->pack);
    else chunk_free(P->pack);
    P->pack = NULL;
    if (st != TERN_OK) set_fail(P, st); /* wakes the others; the first failure's message is kept */
    pthread_mutex_lock(&P->mu);
    P->input_done = 1;
    pthread_cond_broadcast(&P->cv_work);
    pthread_cond_broadcast(&P->cv_done);
    pthread_mutex_unlock(&P->mu);
    for (int i = 0; i < started; i++) pthread_join(ws[i].th, NULL);
    if (writer_started) pthread_join(writer, NULL);
    if (P->failed) st = tern_err(P->fail_st, "%s", P->fail_msg);
    tern_manifest m;
    memset(&m, 0, sizeof m);
    int read_all = st == TERN_OK;
    if (st == TERN_OK) st = finish(P, &m);
    if (read_all) {
        progress(P, 1);
        for (int k = 0; k < N_NOTES; k++) warn_kind(P, k);
    }
    /* the spill files go before the stage becomes the data folder */
    docbuf_free(&P->cur);
    docbuf_free(&P->held);
    if (st == TERN_OK && x->finish) st = x->finish(x->ctx, stage.stage);
    if (st == TERN_OK) st = data_stage_commit(&stage);
    char msg[1024];
    if (st != TERN_OK) snprintf(msg, sizeof msg, "%s", tern_errmsg());
    /* clean up */
    for (int s = 0; s < 2; s++) tern_shard_writer_abort(P->w[s]);
    for (size_t i = 0; i < P->n_shards; i++) free(P->shards[i].file);
    free(P->shards);
    for (chunk *c = P->work_head; c;) {
        chunk *next = c->next;
        P->ring[c->seq % P->ring_n] = NULL;
        chunk_free(c);
        c = next;
    }
    for (size_t i = 0; P->ring && i < P->ring_n; i++) chunk_free(P->ring[i]);
    free(P->ring);
    if (P->src)
        for (size_t i = 0; i < o->n_files; i++) free(P->src[i].path);
    free(P->src);
    free(P->src_fmt);
    free(P->set);
    for (int i = 0; ws && i < nw; i++) {
        tern_tok_encoder_free(ws[i].enc);
        free(ws[i].text.p);
        free(ws[i].scratch.p);
    }
    free(ws);
    pthread_mutex_destroy(&P->mu);
    pthread_cond_destroy(&P->cv_work);
    pthread_cond_destroy(&P->cv_done);
    pthread_cond_destroy(&P->cv_space);
    data_files_free(P->files, P->n_files);
    free(P);
    tern_tok_free(tok);
    data_stage_end(&stage);
    if (st == TERN_OK && out) *out = m;
    else tern_manifest_free(&m);
    if (st != TERN_OK) tern_err(st, "%s", msg);
    return st;
}
