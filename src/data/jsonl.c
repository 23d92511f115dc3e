/* JSON Lines: one line's text field, found and decoded by a strict RFC 8259 parser, and the
 * UTF-8 and NUL statistics that tell text from binary. Not cJSON: a cJSON string cannot hold a
 * NUL byte (`\u0000` would cut a document short without a word), cJSON builds a tree with an
 * allocation per value for a line that needs one field, and it gives no byte offset for
 * messages. The line format and what is refused are in docs/FORMATS.md "Inputs of prepare". */
#include "data/data_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 (Unicode 17.0, chapter 3, table 3-7: well-formed byte sequences) ---- */

/* The length of the well-formed sequence at p (p < end), or 0 when p does not start one. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end) {
    uint8_t b = p[0];
    if (b < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0; /* no overlong forms */
        if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else return 0;
    if ((size_t)(end - p) < need || p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < need; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return need;
}

void data_text_stats(const uint8_t *p, size_t n, data_stats *s) {
    const uint8_t *end = p + n;
    uint64_t nul = 0, bad = 0;
    int blank = s->blank;
    while (p < end) {
        /* ASCII runs eight bytes at a time */
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (v & 0x8080808080808080ull) break;
            /* a zero byte, or anything but white space, is seen in the byte loop below */
            if (blank || ((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull)) break;
            p += 8;
        }
        if (p == end) break;
        uint8_t b = *p;
        if (b < 0x80) {
            if (b == 0) nul++;
            if (blank && b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != '\f' && b != '\v') blank = 0;
            p++;
            continue;
        }
        blank = 0;
        size_t k = utf8_seq(p, end);
        if (k == 0) {
            bad++;
            k = 1;
        }
        p += k;
    }
    s->nul += nul;
    s->bad_utf8 += bad;
    s->blank = blank;
}

size_t data_utf8_first_bad(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, p + n);
        if (!k) return i;
        i += k;
    }
    return n;
}

/* ---- the parser ---- */

#define MAX_DEPTH 256

typedef struct {
    const uint8_t *s;
    size_t n, i;
    const char *why; /* the first problem, at byte `at` */
    size_t at;
    tern_jsonl_status st;
} parser;

static int fail(parser *p, tern_jsonl_status st, const char *why) {
    if (!p->why) {
        p->why = why;
        p->at = p->i;
        p->st = st;
    }
    return 0;
}

static void skip_ws(parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int hex4(const uint8_t *q, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = q[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return 0;
    }
    *out = v;
    return 1;
}

int data_buf_reserve(data_buf *b, size_t k, size_t first) {
    if (b->cap - b->n >= k) return 1;
    size_t cap = b->cap ? b->cap : first;
    while (cap - b->n < k) {
        if (cap > SIZE_MAX / 2) return 0;
        cap *= 2;
    }
    uint8_t *x = realloc(b->p, cap);
    if (!x) return 0;
    b->p = x;
    b->cap = cap;
    return 1;
}

static int put(data_buf *b, const void *q, size_t k) {
    if (!data_buf_reserve(b, k, 256)) return 0;
    memcpy(b->p + b->n, q, k);
    b->n += k;
    return 1;
}

static int put_cp(data_buf *b, uint32_t c) {
    uint8_t u[4];
    size_t k;
    if (c < 0x80) u[0] = (uint8_t)c, k = 1;
    else if (c < 0x800) u[0] = (uint8_t)(0xC0 | c >> 6), u[1] = (uint8_t)(0x80 | (c & 0x3F)), k = 2;
    else if (c < 0x10000)
        u[0] = (uint8_t)(0xE0 | c >> 12), u[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F)), u[2] = (uint8_t)(0x80 | (c & 0x3F)), k = 3;
    else
        u[0] = (uint8_t)(0xF0 | c >> 18), u[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F)), u[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F)),
        u[3] = (uint8_t)(0x80 | (c & 0x3F)), k = 4;
    return put(b, u, k);
}

/* A string at s[i] == '"'. With out, its value is decoded into out (which is reset first); an
 * unpaired surrogate escape then fails as TERN_JSONL_INVALID_UTF8 (UTF-8 cannot hold one).
 * Without out it is only checked. The line is known to be UTF-8, so raw bytes are copied. */
static int string(parser *p, data_buf *out, int *oom) {
    const uint8_t *s = p->s;
    p->i++;
    if (out) out->n = 0;
    for (;;) {
        size_t start = p->i;
        while (p->i < p->n && s[p->i] >= 0x20 && s[p->i] != '"' && s[p->i] != '\\') p->i++;
        if (out && p->i > start && !put(out, s + start, p->i - start)) return *oom = 1, 0;
        if (p->i >= p->n) return fail(p, TERN_JSONL_INVALID_JSON, "a string is not closed");
        uint8_t c = s[p->i];
        if (c == '"') {
            p->i++;
            return 1;
        }
        if (c < 0x20) return fail(p, TERN_JSONL_INVALID_JSON, "a control character inside a string");
        /* a backslash */
        if (p->i + 1 >= p->n) return fail(p, TERN_JSONL_INVALID_JSON, "a string is not closed");
        uint8_t e = s[p->i + 1];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? memchr(from, e, sizeof from - 1) : NULL;
        if (k) {
            if (out && !put(out, &to[k - from], 1)) return *oom = 1, 0;
            p->i += 2;
            continue;
        }
        if (e != 'u') return fail(p, TERN_JSONL_INVALID_JSON, "an unknown escape in a string");
        uint32_t cp;
        if (p->i + 6 > p->n || !hex4(s + p->i + 2, &cp)) return fail(p, TERN_JSONL_INVALID_JSON, "\\u is not followed by 4 hex digits");
        p->i += 6;
        if (!out) continue;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (p->i + 6 <= p->n && s[p->i] == '\\' && s[p->i + 1] == 'u' && hex4(s + p->i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->i += 6;
            } else {
                p->i -= 6;
                return fail(p, TERN_JSONL_INVALID_UTF8, "a \\u escape is an unpaired surrogate, which is not text");
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            p->i -= 6;
            return fail(p, TERN_JSONL_INVALID_UTF8, "a \\u escape is an unpaired surrogate, which is not text");
        }
        if (!put_cp(out, cp)) return *oom = 1, 0;
    }
}

static int digits(parser *p) {
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    return p->i > start;
}

static int number(parser *p) {
    if (p->s[p->i] == '-') p->i++;
    if (p->i < p->n && p->s[p->i] == '0') p->i++;
    else if (!digits(p)) return fail(p, TERN_JSONL_INVALID_JSON, "a malformed number");
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!digits(p)) return fail(p, TERN_JSONL_INVALID_JSON, "a malformed number");
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!digits(p)) return fail(p, TERN_JSONL_INVALID_JSON, "a malformed number");
    }
    return 1;
}

static int value(parser *p, int depth, int *oom);

static int literal(parser *p, const char *w) {
    size_t k = strlen(w);
    if (p->n - p->i < k || memcmp(p->s + p->i, w, k) != 0) return fail(p, TERN_JSONL_INVALID_JSON, "an unexpected character");
    p->i += k;
    return 1;
}

/* An array or an object at s[i]; for the top-level object (depth 0) the members named key are
 * decoded: the last one wins, as in Python's json module. */
typedef struct {
    const char *key;
    size_t key_len;
    data_buf *text, *scratch;
    int found, is_string;
} want;

static int container(parser *p, int depth, want *w, int *oom) {
    if (depth >= MAX_DEPTH) return fail(p, TERN_JSONL_INVALID_JSON, "nested more than 256 deep");
    int obj = p->s[p->i] == '{';
    uint8_t close = obj ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return 1;
    }
    for (;;) {
        if (obj) {
            if (p->i >= p->n || p->s[p->i] != '"') return fail(p, TERN_JSONL_INVALID_JSON, "expected a member name in quotes");
            int match = 0;
            if (w) {
                /* member names are decoded into scratch to compare them (escapes and all) */
                size_t at = p->i;
                if (!string(p, w->scratch, oom)) {
                    if (*oom || p->st != TERN_JSONL_INVALID_UTF8) return 0;
                    /* an unpaired surrogate in a name: that name is not the key; check it as JSON */
                    p->why = NULL;
                    p->i = at;
                    if (!string(p, NULL, oom)) return 0;
                } else {
                    match = w->scratch->n == w->key_len && memcmp(w->scratch->p, w->key, w->key_len) == 0;
                }
            } else if (!string(p, NULL, oom)) {
                return 0;
            }
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return fail(p, TERN_JSONL_INVALID_JSON, "expected ':' after a member name");
            p->i++;
            skip_ws(p);
            if (match) {
                w->found = 1;
                w->is_string = p->i < p->n && p->s[p->i] == '"';
                if (w->is_string) {
                    if (!string(p, w->text, oom)) return 0;
                } else if (!value(p, depth + 1, oom)) {
                    return 0;
                }
            } else if (!value(p, depth + 1, oom)) {
                return 0;
            }
        } else if (!value(p, depth + 1, oom)) {
            return 0;
        }
        skip_ws(p);
        if (p->i >= p->n) return fail(p, TERN_JSONL_INVALID_JSON, obj ? "the object is not closed" : "an array is not closed");
        if (p->s[p->i] == close) {
            p->i++;
            return 1;
        }
        if (p->s[p->i] != ',') return fail(p, TERN_JSONL_INVALID_JSON, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        p->i++;
        skip_ws(p);
    }
}

static int value(parser *p, int depth, int *oom) {
    if (p->i >= p->n) return fail(p, TERN_JSONL_INVALID_JSON, "a value is missing");
    uint8_t c = p->s[p->i];
    if (c == '{' || c == '[') return container(p, depth, NULL, oom);
    if (c == '"') return string(p, NULL, oom);
    if (c == '-' || (c >= '0' && c <= '9')) return number(p);
    if (c == 't') return literal(p, "true");
    if (c == 'f') return literal(p, "false");
    if (c == 'n') return literal(p, "null");
    return fail(p, TERN_JSONL_INVALID_JSON, "an unexpected character");
}

tern_status data_jsonl_text(const uint8_t *line, size_t n, const char *key, data_buf *text, data_buf *scratch, data_jsonl_result *r) {
    memset(r, 0, sizeof *r);
    size_t bad = data_utf8_first_bad(line, n);
    if (bad < n) {
        r->st = TERN_JSONL_INVALID_UTF8;
        r->at = bad;
        r->why = "a byte that is not UTF-8";
        return TERN_OK;
    }
    parser p = {.s = line, .n = n};
    want w = {.key = key, .key_len = strlen(key), .text = text, .scratch = scratch};
    int oom = 0;
    text->n = 0;
    skip_ws(&p);
    if (p.i < n && line[p.i] == '{') {
        if (container(&p, 0, &w, &oom)) {
            skip_ws(&p);
            if (p.i < n) fail(&p, TERN_JSONL_INVALID_JSON, "more after the object");
        }
    } else if (p.i >= n) {
        fail(&p, TERN_JSONL_INVALID_JSON, "an empty line");
    } else {
        int other = line[p.i] && strchr("[\"-0123456789tfn", line[p.i]);
        fail(&p, TERN_JSONL_INVALID_JSON, other ? "a JSON value that is not an object" : "an unexpected character");
    }
    if (oom) return tern_err(TERN_ENOMEM, "out of memory decoding a JSON line of %zu bytes", n);
    if (p.why) {
        r->st = p.st;
        r->at = p.at;
        r->why = p.why;
        return TERN_OK;
    }
    if (!w.found) r->st = TERN_JSONL_MISSING_KEY;
    else if (!w.is_string) r->st = TERN_JSONL_NOT_STRING;
    return TERN_OK;
}

tern_status tern_jsonl_text(const uint8_t *line, size_t n, const char *key, uint8_t **text, size_t *text_n, tern_jsonl_status *result,
                            size_t *at, const char **why) {
    data_buf t = {0}, scratch = {0};
    data_jsonl_result r;
    *text = NULL;
    *text_n = 0;
    tern_status st = data_jsonl_text(line, n, key, &t, &scratch, &r);
    free(scratch.p);
    if (st == TERN_OK && r.st == TERN_JSONL_OK && !t.p && !(t.p = malloc(1))) st = tern_err(TERN_ENOMEM, "out of memory");
    if (st != TERN_OK || r.st != TERN_JSONL_OK) {
        free(t.p);
        t.p = NULL;
        t.n = 0;
    }
    *text = t.p;
    *text_n = t.n;
    *result = r.st;
    if (at) *at = r.at;
    if (why) *why = r.why;
    return st;
}
