/* Benchmark tasks: reading HellaSwag (llama.cpp's text format, plain or bzip2), LAMBADA (OpenAI's
 * JSON Lines) and PIQA (JSON Lines and a labels file), turning each item into (context,
 * continuation) requests as lm-evaluation-harness does, scoring them through a tern_lm and
 * summing the results. Knows no model family: the model is the tern_lm callback (lm_gpt2.c has
 * GPT-2's). Follows lm-evaluation-harness's task definitions (tasks/hellaswag, lambada_openai,
 * piqa), its _encode_pair and its multiple-choice metrics; docs/EVALUATION.md explains them. */
#include "tern/eval.h"

#include "tern/tok.h"

#include <bzlib.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { HELLASWAG, LAMBADA, PIQA };
const char *const tern_task_names[] = {"hellaswag", "lambada", "piqa", NULL};
static const char *const default_files[] = {"eval/hellaswag/hellaswag_val_full.txt.bz2", "eval/lambada/lambada_test.jsonl",
                                            "eval/piqa/valid.jsonl"};
/* Decompressed text larger than this is refused: the largest task file is 7.8 MB. */
#define MAX_TEXT ((size_t)256 << 20)

/* An item's texts, as offsets into the task's arena (which may move as it grows). */
typedef struct item {
    size_t ctx, ctx_len;
    size_t ch[TERN_TASK_MAX_CHOICES], ch_len[TERN_TASK_MAX_CHOICES];
    int n_choices, gold;
} item;

/* An item's token ids, as offsets into the task's id arena. */
typedef struct enc {
    size_t ctx, n_ctx;
    size_t cont[TERN_TASK_MAX_CHOICES], n_cont[TERN_TASK_MAX_CHOICES];
} enc;

struct tern_task {
    int kind;
    char *text; /* the arena of texts */
    size_t text_n, text_cap;
    item *items;
    size_t n, cap;
    /* the encodings of items [0, n_enc) with the tokenizer of hash tok_hash */
    uint8_t tok_hash[TERN_HASH_BYTES];
    size_t n_enc;
    enc *encs;
    tern_ids ids;
};

static int kind_of(const char *name) {
    for (int k = 0; tern_task_names[k]; k++)
        if (!strcmp(name, tern_task_names[k])) return k;
    return -1;
}

const char *tern_task_default_file(const char *name) {
    int k = name ? kind_of(name) : -1;
    return k < 0 ? NULL : default_files[k];
}

tern_status tern_task_data_path(const char *name, char **path) {
    *path = NULL;
    const char *rel = tern_task_default_file(name);
    if (!rel) return tern_err(TERN_EINVAL, "unknown task '%s' (known: hellaswag, lambada, piqa)", name ? name : "");
    char buf[PATH_MAX + 64], exe[PATH_MAX];
    const char *env = getenv("TERN_DATA_DIR");
    snprintf(buf, sizeof buf, "%s/%s", env && *env ? env : "data", rel);
    ssize_t k = env && *env ? 0 : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0 && !tern_path_exists(buf)) {
        exe[k] = 0;
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            char cand[PATH_MAX + 64];
            snprintf(cand, sizeof cand, "%s/data/%s", exe, rel);
            if (tern_path_exists(cand)) {
                memcpy(buf, cand, sizeof buf);
                break;
            }
        }
    }
    *path = strdup(buf);
    return *path ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
}

const char *tern_task_name(const tern_task *t) { return tern_task_names[t->kind]; }
size_t tern_task_count(const tern_task *t) { return t->n; }

void tern_task_free(tern_task *t) {
    if (!t) return;
    free(t->text);
    free(t->items);
    free(t->encs);
    tern_ids_free(&t->ids);
    free(t);
}

/* ---- building the items ---- */
/* Appends n bytes to the arena; stores their offset. */
static tern_status add_text(tern_task *t, const char *p, size_t n, size_t *off) {
    if (t->text_n + n > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 1 << 16;
        while (cap < t->text_n + n) cap *= 2;
        char *q = realloc(t->text, cap);
        if (!q) return tern_err(TERN_ENOMEM, "out of memory for a task's texts (%zu bytes)", cap);
        t->text = q;
        t->text_cap = cap;
    }
    if (n) memcpy(t->text + t->text_n, p, n);
    *off = t->text_n;
    t->text_n += n;
    return TERN_OK;
}

static tern_status add_item(tern_task *t, item **it) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        item *q = realloc(t->items, cap * sizeof *q);
        if (!q) return tern_err(TERN_ENOMEM, "out of memory for a task's items");
        t->items = q;
        t->cap = cap;
    }
    *it = &t->items[t->n++];
    memset(*it, 0, sizeof **it);
    return TERN_OK;
}

/* The next line of [*p, end): its bytes without "\n" or "\r\n"; 0 at the end. */
static int next_line(const char **p, const char *end, const char **line, size_t *len) {
    if (*p >= end) return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    *p = nl ? nl + 1 : end;
    if (*len && (*line)[*len - 1] == '\r') (*len)--;
    return 1;
}

/* llama.cpp's HellaSwag text (klosax/hellaswag_text_data): per task, the context ("activity
 * label: context"), the gold ending's number, then the four endings, one line each. */
static tern_status parse_hellaswag(tern_task *t, const char *d, size_t n, const char *name) {
    const char *p = d, *end = d + n, *line;
    size_t len, lineno = 0;
    item *it = NULL;
    while (next_line(&p, end, &line, &len)) {
        size_t k = lineno++ % 6;
        if (k == 0) TERN_TRY(add_item(t, &it));
        if (len == 0)
            return tern_err(TERN_EFORMAT, "%s: line %zu is empty; expected %s of task %zu (six lines a task: context, gold ending "
                                          "0-3, four endings)",
                            name, lineno, k == 0 ? "the context" : k == 1 ? "the gold ending's number" : "an ending", t->n - 1);
        if (k == 0) {
            TERN_TRY(add_text(t, line, len, &it->ctx));
            it->ctx_len = len;
        } else if (k == 1) {
            if (len != 1 || line[0] < '0' || line[0] > '3')
                return tern_err(TERN_EFORMAT, "%s: line %zu: expected the gold ending's number (0 to 3) of task %zu, found '%.*s'",
                                name, lineno, t->n - 1, (int)(len < 40 ? len : 40), line);
            it->gold = line[0] - '0';
        } else {
            TERN_TRY(add_text(t, line, len, &it->ch[k - 2]));
            it->ch_len[k - 2] = len;
            it->n_choices = 4;
        }
    }
    if (lineno % 6)
        return tern_err(TERN_EFORMAT, "%s: ends after line %zu, inside task %zu (six lines a task: context, gold ending 0-3, "
                                      "four endings)",
                        name, lineno, t->n - 1);
    return TERN_OK;
}

/* A JSON string member of a line's object, or NULL. */
static const cJSON *str_member(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v : NULL;
}

/* Calls fn with each non-empty line of JSON Lines [d, d+n) parsed (NULL when it is not JSON) and
 * its number from 1, until fn fails. */
typedef tern_status (*json_line_fn)(tern_task *t, const cJSON *j, const char *name, size_t lineno);
static tern_status each_json_line(tern_task *t, const char *d, size_t n, const char *name, json_line_fn fn) {
    const char *p = d, *end = d + n, *line;
    size_t len, lineno = 0;
    tern_status st = TERN_OK;
    while (st == TERN_OK && next_line(&p, end, &line, &len)) {
        lineno++;
        if (len == 0) continue;
        cJSON *j = cJSON_ParseWithLength(line, len);
        st = fn(t, j, name, lineno);
        cJSON_Delete(j);
    }
    return st;
}

/* LAMBADA as lm-evaluation-harness's lambada_openai: the context is the text up to its last
 * space, the target what follows that space (text.split(' ')[-1]). */
static tern_status lambada_line(tern_task *t, const cJSON *j, const char *name, size_t lineno) {
    const cJSON *s = cJSON_IsObject(j) ? str_member(j, "text") : NULL;
    if (!s) return tern_err(TERN_EFORMAT, "%s: line %zu: expected a JSON object with a string \"text\"", name, lineno);
    const char *txt = s->valuestring, *sp = strrchr(txt, ' ');
    if (!sp || sp == txt || !sp[1])
        return tern_err(TERN_EFORMAT, "%s: line %zu: the text needs a space with words before and after it (the last word is "
                                      "the target)", name, lineno);
    item *it;
    TERN_TRY(add_item(t, &it));
    it->ctx_len = (size_t)(sp - txt);
    it->ch_len[0] = strlen(sp + 1);
    it->n_choices = 1;
    TERN_TRY(add_text(t, txt, it->ctx_len, &it->ctx));
    return add_text(t, sp + 1, it->ch_len[0], &it->ch[0]);
}

/* PIQA as lm-evaluation-harness's piqa: "Question: <goal>\nAnswer:" and the two solutions. */
static tern_status piqa_line(tern_task *t, const cJSON *j, const char *name, size_t lineno) {
    const cJSON *g = str_member(j, "goal"), *s1 = str_member(j, "sol1"), *s2 = str_member(j, "sol2");
    if (!cJSON_IsObject(j) || !g || !s1 || !s2)
        return tern_err(TERN_EFORMAT, "%s: line %zu: expected a JSON object with strings \"goal\", \"sol1\" and \"sol2\"", name,
                        lineno);
    item *it;
    size_t unused;
    TERN_TRY(add_item(t, &it));
    it->ctx_len = 10 + strlen(g->valuestring) + 8;
    it->n_choices = 2;
    TERN_TRY(add_text(t, "Question: ", 10, &it->ctx)); /* the three pieces lie one after another */
    TERN_TRY(add_text(t, g->valuestring, strlen(g->valuestring), &unused));
    TERN_TRY(add_text(t, "\nAnswer:", 8, &unused));
    for (int c = 0; c < 2; c++) {
        const char *sol = (c ? s2 : s1)->valuestring;
        it->ch_len[c] = strlen(sol);
        TERN_TRY(add_text(t, sol, it->ch_len[c], &it->ch[c]));
    }
    return TERN_OK;
}

static tern_status parse_piqa(tern_task *t, const char *d, size_t n, const char *name, const char *lab, size_t ln,
                              const char *lname) {
    tern_status st = each_json_line(t, d, n, name, piqa_line);
    if (st != TERN_OK) return st;
    if (!lab) return tern_err(TERN_EINVAL, "%s: PIQA needs its labels file too", name);
    const char *p = lab, *end = lab + ln, *line;
    size_t len, lineno = 0, k = 0;
    while (next_line(&p, end, &line, &len)) {
        lineno++;
        if (len == 0 && p == end) break;
        if (len != 1 || (line[0] != '0' && line[0] != '1'))
            return tern_err(TERN_EFORMAT, "%s: line %zu: expected a label 0 or 1, found '%.*s'", lname, lineno,
                            (int)(len < 40 ? len : 40), line);
        if (k < t->n) t->items[k].gold = line[0] - '0';
        k++;
    }
    if (k != t->n)
        return tern_err(TERN_EFORMAT, "%s has %zu labels but %s has %zu items; the lines must pair up", lname, k, name, t->n);
    return TERN_OK;
}

/* bzip2 (one stream or several back to back) into a malloc'd buffer with a NUL after it. */
static tern_status unbzip2(const char *d, size_t n, const char *name, char **out, size_t *outn) {
    size_t cap = n * 4 + 4096, got = 0;
    char *o = malloc(cap + 1);
    if (!o) return tern_err(TERN_ENOMEM, "out of memory to decompress %s", name);
    bz_stream z;
    memset(&z, 0, sizeof z);
    int rc = BZ2_bzDecompressInit(&z, 0, 0);
    z.next_in = (char *)d;
    z.avail_in = n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
    while (rc == BZ_OK) {
        if (got == cap) {
            if (cap >= MAX_TEXT) {
                rc = BZ_MEM_ERROR;
                break;
            }
            cap = cap * 2 > MAX_TEXT ? MAX_TEXT : cap * 2;
            char *q = realloc(o, cap + 1);
            if (!q) {
                rc = BZ_MEM_ERROR;
                break;
            }
            o = q;
        }
        z.next_out = o + got;
        z.avail_out = (unsigned)(cap - got);
        rc = BZ2_bzDecompress(&z);
        got = cap - z.avail_out;
        if (rc == BZ_STREAM_END && z.avail_in >= 3 && !memcmp(z.next_in, "BZh", 3)) { /* another stream follows */
            char *next = z.next_in;
            unsigned left = z.avail_in;
            BZ2_bzDecompressEnd(&z);
            memset(&z, 0, sizeof z);
            rc = BZ2_bzDecompressInit(&z, 0, 0);
            z.next_in = next;
            z.avail_in = left;
        } else if (rc == BZ_OK && z.avail_in == 0 && z.avail_out > 0) {
            rc = BZ_UNEXPECTED_EOF;
        }
    }
    BZ2_bzDecompressEnd(&z);
    if (rc != BZ_STREAM_END) {
        free(o);
        if (rc == BZ_MEM_ERROR && cap >= MAX_TEXT)
            return tern_err(TERN_EFORMAT, "%s: decompresses to more than %zu MiB; not a task file", name, MAX_TEXT >> 20);
        if (rc == BZ_MEM_ERROR) return tern_err(TERN_ENOMEM, "out of memory to decompress %s", name);
        return tern_err(TERN_EFORMAT, "%s: not a whole bzip2 stream (%s)", name,
                        rc == BZ_UNEXPECTED_EOF ? "it ends early" : "corrupt data");
    }
    o[got] = 0;
    *out = o;
    *outn = got;
    return TERN_OK;
}

tern_status tern_task_parse(tern_task **out, const char *name, const char *data, size_t n, const char *data_name,
                            const char *labels, size_t labels_n, const char *labels_name) {
    *out = NULL;
    int kind = name ? kind_of(name) : -1;
    if (kind < 0) return tern_err(TERN_EINVAL, "unknown task '%s' (known: hellaswag, lambada, piqa)", name ? name : "");
    char *plain = NULL;
    if (n >= 3 && !memcmp(data, "BZh", 3)) {
        TERN_TRY(unbzip2(data, n, data_name, &plain, &n));
        data = plain;
    }
    tern_task *t = calloc(1, sizeof *t);
    tern_status st = t ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) {
        t->kind = kind;
        if (kind == HELLASWAG) st = parse_hellaswag(t, data, n, data_name);
        else if (kind == LAMBADA) st = each_json_line(t, data, n, data_name, lambada_line);
        else st = parse_piqa(t, data, n, data_name, labels, labels_n, labels_name ? labels_name : "labels");
    }
    if (st == TERN_OK && t->n == 0) st = tern_err(TERN_EFORMAT, "%s: holds no %s items", data_name, name);
    free(plain);
    if (st != TERN_OK) {
        tern_task_free(t);
        return st;
    }
    *out = t;
    return TERN_OK;
}

tern_status tern_task_load(tern_task **out, const char *name, const char *path) {
    *out = NULL;
    if (!name || kind_of(name) < 0) return tern_err(TERN_EINVAL, "unknown task '%s' (known: hellaswag, lambada, piqa)", name ? name : "");
    char *data = NULL, *labels = NULL, *dpath = NULL, *lpath = NULL;
    size_t n = 0, ln = 0;
    tern_status st = TERN_OK;
    struct stat sb;
    if (kind_of(name) == PIQA) {
        size_t k = strlen(path);
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            dpath = tern_path_join(path, "valid.jsonl");
            lpath = tern_path_join(path, "valid-labels.lst");
        } else if (k > 6 && !strcmp(path + k - 6, ".jsonl")) {
            dpath = strdup(path);
            lpath = malloc(k + 8);
            if (lpath) snprintf(lpath, k + 8, "%.*s-labels.lst", (int)(k - 6), path);
        } else {
            st = tern_err(TERN_EINVAL, "%s: PIQA takes X.jsonl with its labels beside it as X-labels.lst, or the folder holding "
                                       "valid.jsonl and valid-labels.lst", path);
        }
        if (st == TERN_OK && (!dpath || !lpath)) st = tern_err(TERN_ENOMEM, "out of memory");
        if (st == TERN_OK) st = tern_read_file(lpath, &labels, &ln);
    } else {
        dpath = strdup(path);
        if (!dpath) st = tern_err(TERN_ENOMEM, "out of memory");
    }
    if (st == TERN_OK) st = tern_read_file(dpath, &data, &n);
    if (st == TERN_OK) st = tern_task_parse(out, name, data, n, dpath, labels, ln, lpath);
    free(data);
    free(labels);
    free(dpath);
    free(lpath);
    return st;
}

void tern_task_text_at(const tern_task *t, size_t i, tern_task_text *out) {
    TERN_ASSERT(i < t->n);
    const item *it = &t->items[i];
    memset(out, 0, sizeof *out);
    out->ctx = t->text + it->ctx;
    out->ctx_len = it->ctx_len;
    out->n_choices = it->n_choices;
    out->gold = it->gold;
    for (int c = 0; c < it->n_choices; c++) {
        out->choice[c] = t->text + it->ch[c];
        out->choice_len[c] = it->ch_len[c];
    }
}

/* ---- encoding ---- */
/* Bytes of whitespace (Python's str.isspace) that end s[0, n). */
static size_t trailing_space(const char *s, size_t n) {
    size_t k = n;
    for (;;) {
        if (k >= 1) {
            unsigned char c = (unsigned char)s[k - 1];
            if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) {
                k--;
                continue;
            }
        }
        /* the multi-byte ones: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 */
        if (k >= 2) {
            const unsigned char *u = (const unsigned char *)s + k - 2;
            if (u[0] == 0xC2 && (u[1] == 0x85 || u[1] == 0xA0)) {
                k -= 2;
                continue;
            }
        }
        if (k >= 3) {
            const unsigned char *u = (const unsigned char *)s + k - 3;
            unsigned cp = (unsigned)(u[0] & 0x0F) << 12 | (unsigned)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
            if ((u[0] & 0xF0) == 0xE0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 &&
                (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
                 cp == 0x205F || cp == 0x3000)) {
                k -= 3;
                continue;
            }
        }
        return n - k;
    }
}

/* Characters as Python counts them (code points): bytes that do not continue a UTF-8 sequence. */
static size_t utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* One item's ids, encoded apart from the others (in parallel). */
typedef struct item_ids {
    tern_ids ctx, cont[TERN_TASK_MAX_CHOICES];
    tern_status st;
} item_ids;

/* lm-evaluation-harness's _encode_pair: whitespace that ends the context moves to the front of
 * the continuation; the context is encoded alone, context + continuation together, and the
 * continuation's ids are what the joint encoding has past the context's length. */
static tern_status encode_item(const tern_task *t, const struct tern_tok *tok, size_t i, item_ids *r) {
    const item *it = &t->items[i];
    const char *ctx = t->text + it->ctx;
    size_t sp = trailing_space(ctx, it->ctx_len), cl = it->ctx_len - sp;
    TERN_TRY(tern_tok_encode(tok, ctx, cl, &r->ctx));
    for (int c = 0; c < it->n_choices; c++) {
        size_t chl = it->ch_len[c], wl = it->ctx_len + 1 + chl; /* context (with its spaces), " ", choice */
        char *whole = malloc(wl);
        if (!whole) return tern_err(TERN_ENOMEM, "out of memory");
        memcpy(whole, ctx, it->ctx_len);
        whole[it->ctx_len] = ' ';
        memcpy(whole + it->ctx_len + 1, t->text + it->ch[c], chl);
        tern_ids w = {0};
        tern_status st = tern_tok_encode(tok, whole, wl, &w);
        free(whole);
        if (st == TERN_OK && w.n <= r->ctx.n)
            st = tern_err(TERN_EINVAL, "%s item %zu, choice %d: the continuation encodes to no tokens past the context's",
                          tern_task_names[t->kind], i, c);
        if (st == TERN_OK) st = tern_ids_push(&r->cont[c], w.p + r->ctx.n, w.n - r->ctx.n);
        tern_ids_free(&w);
        TERN_TRY(st);
    }
    return TERN_OK;
}

static void item_ids_free(item_ids *r) {
    tern_ids_free(&r->ctx);
    for (int c = 0; c < TERN_TASK_MAX_CHOICES; c++) tern_ids_free(&r->cont[c]);
}

/* Makes sure items [0, upto) are encoded with tok (all are encoded again for another tokenizer). */
static tern_status encode_items(tern_task *t, const struct tern_tok *tok, size_t upto) {
    if (memcmp(t->tok_hash, tern_tok_hash(tok), TERN_HASH_BYTES)) {
        t->n_enc = 0;
        t->ids.n = 0;
        memcpy(t->tok_hash, tern_tok_hash(tok), TERN_HASH_BYTES);
    }
    if (upto <= t->n_enc) return TERN_OK;
    size_t from = t->n_enc, k = upto - from;
    enc *e = realloc(t->encs, upto * sizeof *e);
    item_ids *r = calloc(k, sizeof *r);
    if (!e || !r) {
        if (e) t->encs = e;
        free(r);
        return tern_err(TERN_ENOMEM, "out of memory to encode %zu items", k);
    }
    t->encs = e;
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t i = 0; i < k; i++) r[i].st = encode_item(t, tok, from + i, &r[i]);
    tern_status st = TERN_OK;
    for (size_t i = 0; i < k && st == TERN_OK; i++) {
        if (r[i].st != TERN_OK) { /* the message was set on the thread that failed: again here */
            item_ids again = {0};
            st = encode_item(t, tok, from + i, &again);
            item_ids_free(&again);
            if (st == TERN_OK) st = tern_err(r[i].st, "%s item %zu could not be encoded", tern_task_names[t->kind], from + i);
            break;
        }
        enc *ei = &t->encs[from + i];
        ei->ctx = t->ids.n;
        ei->n_ctx = r[i].ctx.n;
        st = tern_ids_push(&t->ids, r[i].ctx.p, r[i].ctx.n);
        for (int c = 0; c < t->items[from + i].n_choices && st == TERN_OK; c++) {
            ei->cont[c] = t->ids.n;
            ei->n_cont[c] = r[i].cont[c].n;
            st = tern_ids_push(&t->ids, r[i].cont[c].p, r[i].cont[c].n);
        }
    }
    for (size_t i = 0; i < k; i++) item_ids_free(&r[i]);
    free(r);
    if (st == TERN_OK) t->n_enc = upto;
    return st;
}

/* ---- scoring ---- */
void tern_lm_free(tern_lm *lm) {
    if (lm->free) lm->free(lm->self);
    memset(lm, 0, sizeof *lm);
}

typedef struct req_ref {
    size_t item, len; /* the item's position among those scored, and ctx + cont tokens */
    int choice;
    size_t dropped;
} req_ref;

static int by_len_desc(const void *a, const void *b) {
    const req_ref *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    if (x->item != y->item) return x->item < y->item ? -1 : 1;
    return x->choice - y->choice;
}

/* The first index of the largest value (numpy's argmax). */
static int argmax(const double *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static void finish_item(tern_task_item *it) {
    double norm[TERN_TASK_MAX_CHOICES], tok[TERN_TASK_MAX_CHOICES];
    for (int c = 0; c < it->n_choices; c++) {
        /* an empty choice has no characters: numpy's division would give -inf for it */
        norm[c] = it->chars[c] ? it->ll[c] / (double)it->chars[c] : -INFINITY;
        tok[c] = it->ll[c] / (double)it->tokens[c];
    }
    it->pred = argmax(it->ll, it->n_choices);
    it->pred_norm = argmax(norm, it->n_choices);
    it->pred_norm_tok = argmax(tok, it->n_choices);
}

tern_status tern_task_run(tern_task *t, const struct tern_tok *tok, tern_lm *lm, const tern_task_run_opts *o,
                          tern_task_tally *tally) {
    TERN_ASSERT(lm->score && lm->max_len > 0);
    size_t upto = o->limit && o->limit < t->n ? o->limit : t->n;
    size_t world = o->world > 1 ? (size_t)o->world : 1, rank = o->world > 1 ? (size_t)o->rank : 0;
    TERN_ASSERT(rank < world);
    TERN_TRY(encode_items(t, tok, upto));
    size_t mine = upto > rank ? (upto - rank + world - 1) / world : 0, nreq = 0;
    for (size_t k = 0; k < mine; k++) nreq += (size_t)t->items[rank + k * world].n_choices;
    tern_task_item *items = calloc(mine ? mine : 1, sizeof *items);
    req_ref *refs = malloc((nreq ? nreq : 1) * sizeof *refs);
    tern_lm_req *reqs = malloc((nreq ? nreq : 1) * sizeof *reqs);
    tern_lm_res *res = malloc((nreq ? nreq : 1) * sizeof *res);
    tern_status st = items && refs && reqs && res ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory for %zu requests", nreq);
    size_t r = 0;
    for (size_t k = 0; k < mine && st == TERN_OK; k++) {
        size_t i = rank + k * world;
        const enc *e = &t->encs[i];
        tern_task_item *it = &items[k];
        it->index = i;
        it->gold = t->items[i].gold;
        it->n_choices = t->items[i].n_choices;
        for (int c = 0; c < it->n_choices; c++) {
            it->tokens[c] = e->n_cont[c];
            it->chars[c] = utf8_chars(t->text + t->items[i].ch[c], t->items[i].ch_len[c]);
            /* The model reads ctx + cont but the last token, at most max_len of them: the context is cut
             * on the left (lm-evaluation-harness's rule); a continuation longer than the model is scored
             * on its last max_len tokens, given the one before them. */
            size_t input = e->n_ctx + e->n_cont[c] - 1, drop = input > lm->max_len ? input - lm->max_len : 0;
            if (e->n_cont[c] > lm->max_len) {
                drop = e->n_ctx + (e->n_cont[c] - lm->max_len - 1);
                it->tokens[c] = lm->max_len;
            }
            refs[r] = (req_ref){k, e->n_ctx + e->n_cont[c] - drop, c, drop};
            if (drop > it->dropped) it->dropped = drop;
            r++;
        }
    }
    if (st == TERN_OK) qsort(refs, nreq, sizeof *refs, by_len_desc);
    for (size_t q = 0; q < nreq && st == TERN_OK; q++) {
        const enc *e = &t->encs[items[refs[q].item].index];
        int c = refs[q].choice;
        size_t drop = refs[q].dropped;
        if (drop < e->n_ctx) {
            reqs[q] = (tern_lm_req){t->ids.p + e->ctx + drop, e->n_ctx - drop, t->ids.p + e->cont[c], e->n_cont[c]};
        } else { /* the context is gone: one continuation token stands in for it */
            const int32_t *cont = t->ids.p + e->cont[c] + (drop - e->n_ctx);
            reqs[q] = (tern_lm_req){cont, 1, cont + 1, lm->max_len};
        }
    }
    size_t step = lm->batch ? lm->batch : 1;
    for (size_t q = 0; q < nreq && st == TERN_OK; q += step) {
        size_t k = nreq - q < step ? nreq - q : step;
        st = lm->score(lm->self, reqs + q, k, res + q);
        if (o->progress && st == TERN_OK) o->progress(o->ctx, q + k, nreq);
    }
    for (size_t q = 0; q < nreq && st == TERN_OK; q++) {
        tern_task_item *it = &items[refs[q].item];
        it->ll[refs[q].choice] = res[q].logprob;
        it->greedy[refs[q].choice] = res[q].greedy;
    }
    for (size_t k = 0; k < mine && st == TERN_OK; k++) {
        tern_task_item *it = &items[k];
        finish_item(it);
        double ll = it->ll[it->gold];
        tally->n += 1;
        tally->acc += t->kind == LAMBADA ? it->greedy[0] : it->pred == it->gold;
        tally->acc_norm += it->pred_norm == it->gold;
        tally->acc_norm_tok += it->pred_norm_tok == it->gold;
        tally->ll += ll;
        tally->ll_sq += ll * ll;
        tally->truncated += it->dropped > 0;
        if (o->on_item) o->on_item(o->ctx, it);
    }
    free(items);
    free(refs);
    free(reqs);
    free(res);
    return st;
}

/* ---- metrics ---- */
void tern_task_summarize(const tern_task *t, const tern_task_tally *tl, tern_task_metrics *m) {
    double n = tl->n;
#define MEAN(x) (n > 0 ? (x) / n : NAN)
#define SE(x) (n > 1 ? sqrt(MEAN(x) * (1 - MEAN(x)) / (n - 1)) : NAN)
    m->n = n;
    m->truncated = tl->truncated;
    m->acc = MEAN(tl->acc);
    m->acc_se = SE(tl->acc);
    int mc = t->kind != LAMBADA;
    m->acc_norm = mc ? MEAN(tl->acc_norm) : NAN;
    m->acc_norm_se = mc ? SE(tl->acc_norm) : NAN;
    m->acc_norm_tok = mc ? MEAN(tl->acc_norm_tok) : NAN;
    m->acc_norm_tok_se = mc ? SE(tl->acc_norm_tok) : NAN;
    double mean = MEAN(tl->ll), var = n > 1 ? (tl->ll_sq - n * mean * mean) / (n - 1) : NAN;
    m->ppl = mc ? NAN : exp(-mean);
    m->ppl_se = mc || !(n > 1) ? NAN : m->ppl * sqrt(var > 0 ? var : 0) / sqrt(n);
#undef MEAN
#undef SE
}

/* Appends ,"<task>_<key>":value (null for NaN) to b. */
static void add_num(char *b, size_t cap, const char *task, const char *key, double v) {
    size_t k = strlen(b);
    if (isfinite(v)) snprintf(b + k, cap - k, ",\"%s_%s\":%.9g", task, key, v);
    else snprintf(b + k, cap - k, ",\"%s_%s\":null", task, key);
}

tern_status tern_task_metrics_json(const tern_task *t, const tern_task_tally *tally, int64_t step, char **json) {
    tern_task_metrics m;
    tern_task_summarize(t, tally, &m);
    const char *name = tern_task_names[t->kind];
    char b[1024];
    if (step >= 0) snprintf(b, sizeof b, "{\"step\":%lld", (long long)step);
    else snprintf(b, sizeof b, "{");
    add_num(b, sizeof b, name, "acc", m.acc);
    add_num(b, sizeof b, name, "acc_stderr", m.acc_se);
    if (t->kind == LAMBADA) {
        add_num(b, sizeof b, name, "ppl", m.ppl);
        add_num(b, sizeof b, name, "ppl_stderr", m.ppl_se);
    } else {
        add_num(b, sizeof b, name, "acc_norm", m.acc_norm);
        add_num(b, sizeof b, name, "acc_norm_stderr", m.acc_norm_se);
        add_num(b, sizeof b, name, "acc_norm_tok", m.acc_norm_tok);
        add_num(b, sizeof b, name, "acc_norm_tok_stderr", m.acc_norm_tok_se);
    }
    size_t k = strlen(b);
    snprintf(b + k, sizeof b - k, ",\"%s_items\":%.0f,\"%s_truncated\":%.0f}", name, m.n, name, m.truncated);
    if (step < 0 && b[1] == ',') memmove(b + 1, b + 2, strlen(b + 2) + 1); /* no "step": no comma after "{" */
    *json = strdup(b);
    return *json ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
}

tern_status tern_task_item_json(const tern_task *t, const tern_task_item *it, char **json) {
    char b[1024];
    int n = snprintf(b, sizeof b, "{\"index\":%zu", it->index);
    if (t->kind == LAMBADA) {
        n += snprintf(b + n, sizeof b - (size_t)n, ",\"ll\":%.9g,\"tokens\":%zu,\"greedy\":%s", it->ll[0], it->tokens[0],
                      it->greedy[0] ? "true" : "false");
    } else {
        n += snprintf(b + n, sizeof b - (size_t)n, ",\"gold\":%d,\"pred\":%d,\"pred_norm\":%d,\"pred_norm_tok\":%d", it->gold,
                      it->pred, it->pred_norm, it->pred_norm_tok);
        const char *keys[] = {"ll", "tokens", "chars"};
        for (int f = 0; f < 3; f++) {
            n += snprintf(b + n, sizeof b - (size_t)n, ",\"%s\":[", keys[f]);
            for (int c = 0; c < it->n_choices; c++) {
                const char *sep = c ? "," : "";
                if (f == 0) n += snprintf(b + n, sizeof b - (size_t)n, "%s%.9g", sep, it->ll[c]);
                else n += snprintf(b + n, sizeof b - (size_t)n, "%s%zu", sep, f == 1 ? it->tokens[c] : it->chars[c]);
            }
            n += snprintf(b + n, sizeof b - (size_t)n, "]");
        }
    }
    snprintf(b + n, sizeof b - (size_t)n, ",\"truncated\":%zu}", it->dropped);
    *json = strdup(b);
    return *json ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
}
