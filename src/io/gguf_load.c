/* A GGUF file back into tern: the model (f32 files of llama.cpp's gpt2, llama and qwen2
 * architectures, whether tern or llama.cpp's converter wrote them) and the GPT-2 byte-level BPE
 * tokenizer embedded in it, as vocab.json + merges.txt. The family tables (gguf_gpt2.c,
 * gguf_llama.c) say the metadata and the names; this file checks every tensor against them. */
#include "io/gguf_arch.h"
#include "tern/io.h"
#include "tern/tok.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

tern_status gguf_get_int(const tern_gguf *g, const char *key, int *out) {
    uint32_t v;
    TERN_TRY(tern_gguf_get_u32(g, key, &v));
    if (v > INT_MAX) return tern_err(TERN_EFORMAT, "%s: key '%s' is %u, too large", tern_gguf_label(g), key, v);
    *out = (int)v;
    return TERN_OK;
}

static void fmt_dims(char *out, size_t n, uint32_t nd, const uint64_t *ne) {
    size_t k = (size_t)snprintf(out, n, "{");
    for (uint32_t j = 0; j < nd && k < n; j++) k += (size_t)snprintf(out + k, n - k, "%s%llu", j ? ", " : "", (unsigned long long)ne[j]);
    if (k < n) snprintf(out + k, n - k, "}");
}

static const gguf_arch *const archs[] = {&tern_gguf_arch_gpt2, &tern_gguf_arch_llama, &tern_gguf_arch_qwen2};

/* The family table for the file's general.architecture. */
static tern_status find_arch(const tern_gguf *g, const gguf_arch **out) {
    tern_gguf_str a;
    TERN_TRY(tern_gguf_get_str(g, "general.architecture", &a));
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (a.n == strlen(archs[i]->name) && !memcmp(a.p, archs[i]->name, a.n)) return *out = archs[i], TERN_OK;
    return tern_err(TERN_EFORMAT, "%s: architecture '%.*s' is not one tern loads (gpt2, llama, qwen2)", tern_gguf_label(g),
                    (int)(a.n > 40 ? 40 : a.n), a.p);
}

/* One tensor of tern's table from the file: present, f32, of the shape the layout implies. */
static tern_status read_tensor(const tern_gguf *g, const gguf_arch *arch, tern_model *m, const tern_tensor *t, float *dst) {
    const char *L = tern_gguf_label(g);
    const tern_model_config *c = tern_model_cfg(m);
    char gname[TERN_GGUF_MAX_NAME], have[96], want[96];
    int keep;
    int layout = arch->tensor(c, t->name, gname, &keep);
    uint64_t ne[2];
    uint32_t nd = gguf_dims(t, layout == GGUF_TRANSPOSE, ne);
    const tern_gguf_tensor *s = tern_gguf_find_tensor(g, gname);
    if (!s) return tern_err(TERN_ENOTFOUND, "%s: missing tensor '%s'", L, gname);
    if (s->type != TERN_GGML_F32)
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' is %s; tern loads f32 GGUF files only (tern export --type f32)", L, gname,
                        tern_ggml_type_name(s->type));
    if (s->n_dims != nd || s->ne[0] != ne[0] || (nd == 2 && s->ne[1] != ne[1])) {
        fmt_dims(have, sizeof have, s->n_dims, s->ne);
        fmt_dims(want, sizeof want, nd, ne);
        return tern_err(TERN_EFORMAT, "%s: tensor '%s' has ggml dims %s, expected %s", L, gname, have, want);
    }
    size_t r = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    size_t heads = (size_t)(layout == GGUF_ROPE_Q ? c->n_head : c->n_kv_head);
    gguf_relayout(dst, (const float *)s->data, r, cols, layout, heads, 0);
    return tern_model_write(m, TERN_PARAMS, t->offset, t->numel, dst);
}

/* Every tensor of the file is one of the table's, or a GPT-2's untied copy of its embedding
 * (llama.cpp's converter writes output.weight for GPT-2 files from some checkpoints). */
static tern_status check_extra(const tern_gguf *g, const gguf_arch *arch, tern_model *m) {
    const char *L = tern_gguf_label(g);
    const tern_model_config *c = tern_model_cfg(m);
    size_t nt, nf = tern_gguf_tensor_count(g);
    const tern_tensor *t = tern_model_tensors(m, &nt);
    const tern_gguf_tensor *te = tern_gguf_find_tensor(g, "token_embd.weight");
    /* Every name of the table was found and names are unique, so the count bounds the scan. */
    if (nf > nt + 1)
        return tern_err(TERN_EFORMAT, "%s: %zu tensors, but a %s of this shape has %zu (and maybe output.weight)", L, nf, arch->label, nt);
    for (size_t i = 0; i < nf; i++) {
        const tern_gguf_tensor *s = tern_gguf_tensor_at(g, i);
        int known = 0;
        for (size_t k = 0; !known && k < nt; k++) {
            char gname[TERN_GGUF_MAX_NAME];
            int keep;
            arch->tensor(c, t[k].name, gname, &keep);
            known = !strcmp(gname, s->name);
        }
        if (known) continue;
        if (!strcmp(s->name, "output.weight") && c->tie_embeddings) {
            if (s->type != te->type || s->n_dims != 2 || s->ne[0] != te->ne[0] || s->ne[1] != te->ne[1] || memcmp(s->data, te->data, s->nbytes))
                return tern_err(TERN_EFORMAT, "%s: output.weight differs from token_embd.weight; tern's %s ties them", L, arch->label);
            continue;
        }
        return tern_err(TERN_EFORMAT, "%s: unexpected tensor '%s' for a %s of this shape", L, s->name, arch->label);
    }
    return TERN_OK;
}

tern_status tern_gguf_load_model(const tern_gguf *g, tern_model **out, tern_backend *be) {
    *out = NULL;
    const char *L = tern_gguf_label(g);
    const gguf_arch *arch = NULL;
    tern_model_config cfg;
    TERN_TRY(find_arch(g, &arch));
    TERN_TRY(arch->config(g, &cfg));
    const tern_gguf_tensor *te = tern_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return tern_err(TERN_ENOTFOUND, "%s: missing tensor 'token_embd.weight'", L);
    if (te->n_dims != 2 || te->ne[1] > INT_MAX) return tern_err(TERN_EFORMAT, "%s: token_embd.weight is not a [vocabulary, n_embd] matrix", L);
    cfg.vocab_size = (int)te->ne[1];
    const tern_gguf_kv *toks = tern_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (toks && toks->n != te->ne[1])
        return tern_err(TERN_EFORMAT, "%s: tokenizer.ggml.tokens has %llu tokens but token_embd.weight has %llu rows", L,
                        (unsigned long long)toks->n, (unsigned long long)te->ne[1]);
    tern_status st = tern_model_config_check(&cfg);
    if (st != TERN_OK) return tern_err_wrap(st, "%s", L);
    /* Every parameter comes from a tensor of the file, so a shape the file cannot come near
     * filling (more than twice the values it holds; a file that merely lacks a tensor gets the
     * precise message of read_tensor) is refused before the model is allocated: a few bytes of
     * metadata must not make tern allocate and zero gigabytes. Tensors lie inside the file at
     * under 8 values a byte, so the sum cannot wrap. */
    uint64_t need = tern_model_config_num_params(&cfg), have = 0;
    for (size_t i = 0; i < tern_gguf_tensor_count(g); i++) have += tern_gguf_tensor_at(g, i)->numel;
    if (need / 2 > have)
        return tern_err(TERN_EFORMAT, "%s: a %s of this shape has %llu parameters, but the file's tensors hold %llu values", L, arch->label,
                        (unsigned long long)need, (unsigned long long)have);
    tern_model *m;
    TERN_TRY(tern_model_init(&m, &cfg, be));
    size_t nt, most = 0;
    const tern_tensor *t = tern_model_tensors(m, &nt);
    for (size_t i = 0; i < nt; i++) most = t[i].numel > most ? t[i].numel : most;
    float *dst = malloc(most * sizeof(float));
    if (!dst) st = tern_err(TERN_ENOMEM, "out of memory reading %s", L);
    for (size_t i = 0; st == TERN_OK && i < nt; i++) st = read_tensor(g, arch, m, &t[i], dst);
    free(dst);
    if (st == TERN_OK) st = check_extra(g, arch, m);
    if (st != TERN_OK) {
        tern_model_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

/* ---- the embedded tokenizer, back to vocab.json + merges.txt ---- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 1;
}

/* A JSON string: quote, backslash and control characters escaped, other bytes as they are. */
static int sb_json_str(sbuf *b, const char *s, size_t n) {
    int ok = sb_put(b, "\"", 1);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            ok = sb_put(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            ok = sb_put(b, esc, 6);
        } else {
            ok = sb_put(b, s + i, 1);
        }
    }
    return ok && sb_put(b, "\"", 1);
}

static tern_status tokenizer_texts(const tern_gguf *g, sbuf *vocab, sbuf *merges) {
    const char *L = tern_gguf_label(g);
    tern_gguf_str model;
    TERN_TRY(tern_gguf_get_str(g, "tokenizer.ggml.model", &model));
    if (model.n != 4 || memcmp(model.p, "gpt2", 4))
        return tern_err(TERN_EFORMAT, "%s: tokenizer.ggml.model is '%.*s'; tern reads GPT-2 byte-level BPE ('gpt2') only", L,
                        (int)(model.n > 40 ? 40 : model.n), model.p);
    const tern_gguf_kv *tk, *mg;
    TERN_TRY(tern_gguf_get_arr(g, "tokenizer.ggml.tokens", TERN_GGUF_STRING, &tk));
    TERN_TRY(tern_gguf_get_arr(g, "tokenizer.ggml.merges", TERN_GGUF_STRING, &mg));
    int ok = sb_put(vocab, "{", 1);
    for (uint64_t i = 0; ok && i < tk->n; i++) {
        char num[32];
        int k = snprintf(num, sizeof num, ": %llu", (unsigned long long)i);
        ok = (i == 0 || sb_put(vocab, ", ", 2)) && sb_json_str(vocab, tk->strs[i].p, (size_t)tk->strs[i].n) && sb_put(vocab, num, (size_t)k);
    }
    ok = ok && sb_put(vocab, "}\n", 2) && sb_put(merges, "#version: 0.2\n", 14);
    for (uint64_t i = 0; ok && i < mg->n; i++) {
        const tern_gguf_str *s = &mg->strs[i];
        if (memchr(s->p, '\n', (size_t)s->n) || memchr(s->p, '\r', (size_t)s->n))
            return tern_err(TERN_EFORMAT, "%s: merge %llu of tokenizer.ggml.merges contains a line break", L, (unsigned long long)i);
        ok = sb_put(merges, s->p, (size_t)s->n) && sb_put(merges, "\n", 1);
    }
    return ok ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory writing the tokenizer of %s", L);
}

static tern_status write_texts(const char *dir, const sbuf *vocab, const sbuf *merges) {
    TERN_TRY(tern_mkdir_p(dir));
    char *vp = tern_path_join(dir, "vocab.json"), *mp = tern_path_join(dir, "merges.txt");
    tern_status st = (!vp || !mp) ? tern_err(TERN_ENOMEM, "out of memory") : TERN_OK;
    if (st == TERN_OK) st = tern_write_file_atomic(vp, vocab->p, vocab->n);
    if (st == TERN_OK) st = tern_write_file_atomic(mp, merges->p, merges->n);
    free(vp);
    free(mp);
    return st;
}

tern_status tern_gguf_write_tokenizer(const tern_gguf *g, const char *dir) {
    sbuf v = {0}, m = {0};
    tern_status st = tokenizer_texts(g, &v, &m);
    if (st == TERN_OK) st = write_texts(dir, &v, &m);
    free(v.p);
    free(m.p);
    return st;
}

/* The marker that makes an extracted tokenizer folder temporary: tern_io_tokdir_free removes a
 * folder only when it holds this file, so a user's own folder is never touched. */
#define TMP_MARK ".tern-temporary"

/* The embedded tokenizer into a new folder of its own under $TMPDIR (or /tmp), made by mkdtemp so
 * that concurrent processes never share or overwrite one; the caller removes it with
 * tern_io_tokdir_free when done. */
static tern_status extract_tokenizer(const tern_gguf *g, const char *path, char **tokdir) {
    sbuf v = {0}, m = {0};
    tern_status st = tokenizer_texts(g, &v, &m);
    const char *tmp = getenv("TMPDIR");
    char *dir = st == TERN_OK ? tern_path_join(tmp && *tmp ? tmp : "/tmp", "tern-gguf-tokenizer-XXXXXX") : NULL;
    if (st == TERN_OK && !dir) st = tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK && !mkdtemp(dir)) st = tern_err(TERN_EIO, "%s: cannot make a temporary folder", dir);
    char *mark = st == TERN_OK ? tern_path_join(dir, TMP_MARK) : NULL;
    if (st == TERN_OK) st = mark ? tern_write_file_atomic(mark, "", 0) : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) st = write_texts(dir, &v, &m);
    free(mark);
    free(v.p);
    free(m.p);
    if (st != TERN_OK) {
        if (dir) tern_io_tokdir_free(dir);
        return tern_err_wrap(st, "extracting the tokenizer of %s", path);
    }
    *tokdir = dir;
    return TERN_OK;
}

void tern_io_tokdir_free(char *tokdir) {
    if (!tokdir) return;
    char *mark = tern_path_join(tokdir, TMP_MARK);
    if (mark && tern_path_exists(mark)) {
        static const char *const files[] = {"vocab.json", "merges.txt", TMP_MARK};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char *p = tern_path_join(tokdir, files[i]);
            if (p) unlink(p);
            free(p);
        }
        rmdir(tokdir);
    }
    free(mark);
    free(tokdir);
}

tern_status tern_gguf_open_model(const char *path, tern_model **out, char **tokdir, tern_backend *be) {
    *out = NULL;
    if (tokdir) *tokdir = NULL;
    tern_gguf *g;
    TERN_TRY(tern_gguf_open(&g, path));
    tern_status st = tern_gguf_load_model(g, out, be);
    if (st == TERN_OK && tokdir) st = extract_tokenizer(g, path, tokdir);
    tern_gguf_free(g);
    if (st != TERN_OK) {
        tern_model_free(*out);
        *out = NULL;
    }
    return st;
}
