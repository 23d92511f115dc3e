/* Encoding and decoding whole texts with a loaded tokenizer: large texts are split at cuts and
 * encoded on all OpenMP threads (one bpe.c worker each), a thread's encoder is kept between
 * texts, files are streamed in bounded memory. Not a tokenizer for other pre-tokenization patterns
 * (cl100k etc.). */
#include "tok/tok_int.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- whole texts, on all threads ---- */

/* Below this a text is encoded on one thread. */
#define PARALLEL_MIN (1u << 20)
#define SEGMENT_MIN (256u << 10)

/* Encodes s[0..n) (n ending at a cut or at the end of the text) with the given workers. */
static tern_status encode_parallel(tok_worker **ws, int nw, const uint8_t *s, size_t n, uint64_t base, tern_ids *out) {
    if (nw <= 1 || n < PARALLEL_MIN) return tok_worker_encode(ws[0], s, n, base, out);
    size_t nseg = (size_t)nw * 4;
    if (n / nseg < SEGMENT_MIN) nseg = n / SEGMENT_MIN;
    if (nseg < 2) return tok_worker_encode(ws[0], s, n, base, out);
    size_t *cut = malloc((nseg + 1) * sizeof(size_t));
    tern_ids *part = calloc(nseg, sizeof(tern_ids));
    tern_status *sts = malloc(nseg * sizeof(tern_status));
    char (*msgs)[512] = malloc(nseg * sizeof *msgs);
    if (!cut || !part || !sts || !msgs) {
        free(cut);
        free(part);
        free(sts);
        free(msgs);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    size_t k = 0;
    cut[k++] = 0;
    for (size_t j = 1; j < nseg; j++) {
        size_t target = j * (n / nseg);
        if (target <= cut[k - 1]) continue;
        size_t c = tok_first_cut(s, target, (j + 1) * (n / nseg), n);
        if (c) cut[k++] = c;
    }
    cut[k] = n;
    size_t ns = k;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nw)
    for (size_t j = 0; j < ns; j++) {
        tok_worker *w = ws[omp_get_thread_num()];
        sts[j] = tok_worker_encode(w, s + cut[j], cut[j + 1] - cut[j], base + cut[j], &part[j]);
        if (sts[j] != TERN_OK) snprintf(msgs[j], sizeof msgs[j], "%s", tern_errmsg());
    }
    tern_status st = TERN_OK;
    for (size_t j = 0; j < ns && st == TERN_OK; j++) {
        if (sts[j] != TERN_OK) st = tern_err(sts[j], "%s", msgs[j]);
        else st = tern_ids_push(out, part[j].p, part[j].n);
    }
    for (size_t j = 0; j < ns; j++) tern_ids_free(&part[j]);
    free(cut);
    free(part);
    free(sts);
    free(msgs);
    return st;
}

static tern_status workers_init(tok_worker ***out, int *nw, const tern_tok *tok) {
    int n = omp_get_max_threads();
    if (n < 1) n = 1;
    tok_worker **ws = calloc((size_t)n, sizeof *ws);
    if (!ws) return tern_err(TERN_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        tern_status st = tok_worker_init(&ws[i], tok);
        if (st != TERN_OK) {
            for (int j = 0; j < i; j++) tok_worker_free(ws[j]);
            free(ws);
            return st;
        }
    }
    *out = ws;
    *nw = n;
    return TERN_OK;
}

static void workers_free(tok_worker **ws, int nw) {
    if (!ws) return;
    for (int i = 0; i < nw; i++) tok_worker_free(ws[i]);
    free(ws);
}

tern_status tern_tok_encode(const tern_tok *tok, const void *text, size_t n, tern_ids *out) {
    if (n == 0) return TERN_OK;
    tok_worker **ws;
    int nw;
    if (n < PARALLEL_MIN) {
        tok_worker *w;
        TERN_TRY(tok_worker_init(&w, tok));
        tern_status st = tok_worker_encode(w, text, n, 0, out);
        tok_worker_free(w);
        return st;
    }
    TERN_TRY(workers_init(&ws, &nw, tok));
    tern_status st = encode_parallel(ws, nw, text, n, 0, out);
    workers_free(ws, nw);
    return st;
}

/* ---- one thread's encoder, kept between texts ---- */

struct tern_tok_encoder {
    tok_worker *w;
};

tern_status tern_tok_encoder_init(tern_tok_encoder **out, const tern_tok *tok) {
    *out = NULL;
    tern_tok_encoder *e = calloc(1, sizeof *e);
    if (!e) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = tok_worker_init(&e->w, tok);
    if (st != TERN_OK) {
        free(e);
        return st;
    }
    tok_worker_full_cache(e->w); /* many texts will pass through */
    *out = e;
    return TERN_OK;
}

void tern_tok_encoder_free(tern_tok_encoder *e) {
    if (!e) return;
    tok_worker_free(e->w);
    free(e);
}

tern_status tern_tok_encoder_encode(tern_tok_encoder *e, const void *text, size_t n, tern_ids *out) {
    return n ? tok_worker_encode(e->w, text, n, 0, out) : TERN_OK;
}

size_t tern_tok_split_point(const void *text, size_t n) { return n > 4 ? tok_last_cut(text, 0, n - 4, n) : 0; }

tern_status tern_tok_decode(const tern_tok *tok, const int32_t *ids, size_t n, char **buf, size_t *len) {
    size_t add = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_vocab)
            return tern_err(TERN_EINVAL, "token %zu is id %d, outside the vocabulary (ids 0 to %zu)", i, (int)ids[i],
                            tok->n_vocab - 1);
        add += (size_t)(tok->tok_off[ids[i] + 1] - tok->tok_off[ids[i]]);
    }
    char *p = realloc(*buf, *len + add + 1);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory decoding %zu tokens", n);
    char *q = p + *len;
    for (size_t i = 0; i < n; i++) {
        size_t l = (size_t)(tok->tok_off[ids[i] + 1] - tok->tok_off[ids[i]]);
        memcpy(q, tok->blob + tok->tok_off[ids[i]], l);
        q += l;
    }
    *q = 0;
    *buf = p;
    *len += add;
    return TERN_OK;
}

/* ---- streaming ---- */

/* The text read at a time. Memory stays within a few times this plus TERN_TOK_MAX_PIECE. */
#define STREAM_BLOCK ((size_t)8 << 20)

tern_status tok_read_blocks(int fd, const char *name, tok_block_fn fn, void *ctx) {
    size_t cap = STREAM_BLOCK, len = 0;
    uint64_t base = 0; /* file offset of buf[0] */
    uint8_t *buf = malloc(cap);
    tern_status st = buf ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    int eof = 0;
    while (st == TERN_OK) {
        while (!eof && len < cap) {
            ssize_t r = read(fd, buf + len, cap - len);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                st = tern_err(TERN_EIO, "%s: read failed at byte %llu: %s", name, (unsigned long long)(base + len),
                              strerror(errno));
                break;
            }
            if (r == 0) eof = 1;
            len += (size_t)r;
        }
        if (st != TERN_OK) break;
        size_t cut = len;
        if (!eof) {
            /* the character at a cut and the one before it must be whole: keep 4 bytes back */
            cut = tern_tok_split_point(buf, len);
            if (cut == 0) {
                /* no cut in len - 4 bytes: one pre-token at least that long */
                if (len - 4 > TERN_TOK_MAX_PIECE) {
                    st = tern_err(TERN_EINVAL,
                                  "%s: from byte %llu, more than %zu bytes with no break between pre-tokens (one run of "
                                  "letters, digits, symbols or spaces), more than tern encodes as one pre-token",
                                  name, (unsigned long long)base, TERN_TOK_MAX_PIECE);
                    break;
                }
                size_t ncap = cap * 2 < TERN_TOK_MAX_PIECE + 8 ? cap * 2 : TERN_TOK_MAX_PIECE + 8;
                uint8_t *nb = realloc(buf, ncap);
                if (!nb) {
                    st = tern_err(TERN_ENOMEM, "%s: out of memory", name);
                    break;
                }
                buf = nb;
                cap = ncap;
                continue;
            }
        }
        if (cut) st = fn(ctx, buf, cut, base);
        if (st != TERN_OK) break;
        memmove(buf, buf + cut, len - cut);
        len -= cut;
        base += cut;
        if (eof && len == 0) break;
        if (cap > STREAM_BLOCK && len < STREAM_BLOCK / 2) {
            uint8_t *nb = realloc(buf, STREAM_BLOCK);
            if (nb) {
                buf = nb;
                cap = STREAM_BLOCK;
            }
        }
    }
    free(buf);
    return st;
}

typedef struct {
    tok_worker **ws;
    int nw;
    const char *name;
    tern_ids ids;
    tern_tok_sink sink;
    void *ctx;
} stream_ctx;

static tern_status stream_block(void *ctx, const uint8_t *s, size_t n, uint64_t base) {
    stream_ctx *c = ctx;
    c->ids.n = 0;
    tern_status st = encode_parallel(c->ws, c->nw, s, n, base, &c->ids);
    if (st != TERN_OK) return tern_err_wrap(st, "%s", c->name);
    return c->ids.n ? c->sink(c->ctx, c->ids.p, c->ids.n) : TERN_OK;
}

tern_status tern_tok_encode_fd(const tern_tok *tok, int fd, const char *name, tern_tok_sink sink, void *ctx) {
    stream_ctx c = {.name = name, .sink = sink, .ctx = ctx};
    TERN_TRY(workers_init(&c.ws, &c.nw, tok));
    tern_status st = tok_read_blocks(fd, name, stream_block, &c);
    tern_ids_free(&c.ids);
    workers_free(c.ws, c.nw);
    return st;
}
