/* Checkpoint folders: RUNDIR/ckpt/step-NNNNNN/ holding model.safetensors (Hugging Face names),
 * optimizer.safetensors (AdamW moments per tensor, torch's exp_avg/exp_avg_sq names) and
 * state.json; RUNDIR/ckpt/latest names the newest. A checkpoint appears whole or not at all:
 * its files are written into a hidden folder, fsynced, and the folder renamed into place before
 * `latest` is switched (itself an atomic file). Unlike llm.c's in-place writes, a kill at any
 * moment leaves the previous checkpoint intact. */
#include "tern/ckpt.h"
#include "tern/secure.h"

#include <dirent.h>
#include <sodium.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const tern_key *seal_key(const tern_ckpt_seal *seal) { return seal ? seal->key : NULL; }

/* The names in model.safetensors are the family's whole Hugging Face names ("transformer.h.0..."
 * for GPT-2), so that a checkpoint's model loads in transformers as it is. */
static const char *ckpt_prefix(const tern_model *m) { return tern_model_hf_prefix(m); }

/* "run <run id> ckpt step <N> <file name>": binds a sealed checkpoint file to its run, its step
 * and its role. The step comes from the folder's name (step-NNNNNN). */
static tern_status ckpt_identity(char *out, size_t n, const tern_ckpt_seal *seal, const char *ckptdir, const char *file) {
    const char *base = strrchr(ckptdir, '/');
    base = base ? base + 1 : ckptdir;
    unsigned long long step = 0;
    const char *p = strstr(base, "step-");
    if (p) step = strtoull(p + 5, NULL, 10);
    else return tern_err(TERN_EINVAL, "%s: not a checkpoint folder (its name is not step-N)", ckptdir);
    if (!seal->run_id || !seal->run_id[0] || strlen(seal->run_id) > 64)
        return tern_err(TERN_EINVAL, "a sealed run needs a run id of 1 to 64 bytes");
    snprintf(out, n, "run %s ckpt step %llu %s", seal->run_id, step, file);
    return TERN_OK;
}

/* Writes the bytes of one checkpoint file: sealed when a key is set, else plainly (atomic). */
static tern_status put_file(const tern_ckpt_seal *seal, const char *dir, const char *path, const char *file, const void *p, size_t n) {
    char ident[256];
    if (seal_key(seal)) TERN_TRY(ckpt_identity(ident, sizeof ident, seal, dir, file));
    return tern_seal_file(path, seal_key(seal), ident, p, n);
}

/* Reads one checkpoint file whole: a sealed one is decrypted in memory (and refused without the
 * key, or when it was sealed for another run, step or role); with a key, a plain one is refused. */
static tern_status get_file(const tern_ckpt_seal *seal, const char *ckptdir, const char *file, tern_plain *out) {
    memset(out, 0, sizeof *out);
    char *p = tern_path_join(ckptdir, file);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory");
    char ident[256];
    tern_status st = seal_key(seal) ? ckpt_identity(ident, sizeof ident, seal, ckptdir, file) : TERN_OK;
    if (st == TERN_OK) st = tern_secure_read_file(out, p, seal_key(seal), seal_key(seal) ? ident : NULL);
    free(p);
    return st;
}

/* A checkpoint's safetensors file, sealed or plain; *pl holds the bytes a sealed file parses
 * from and must outlive *out. */
static tern_status open_st(const tern_ckpt_seal *seal, tern_safetensors **out, tern_plain *pl, const char *ckptdir, const char *file) {
    *out = NULL;
    memset(pl, 0, sizeof *pl);
    char *p = tern_path_join(ckptdir, file);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory");
    int sealed = 0;
    tern_status st = tern_sealed_probe(p, &sealed);
    if (st == TERN_OK) st = tern_secure_check(p, sealed, seal_key(seal));
    if (st == TERN_OK && !sealed) st = tern_st_open(out, p);
    if (st == TERN_OK && sealed) {
        st = get_file(seal, ckptdir, file, pl);
        if (st == TERN_OK) st = tern_st_from_buffer(out, pl->data, pl->size, p);
        if (st != TERN_OK) tern_plain_free(pl);
    }
    free(p);
    return st;
}

static tern_status write_st(const tern_ckpt_seal *seal, tern_st_writer *w, const char *dir, const char *path, const char *file) {
    if (!seal_key(seal)) return tern_st_write(w, path);
    uint8_t *buf = NULL;
    size_t n = 0;
    TERN_TRY(tern_st_serialize(w, &buf, &n));
    tern_status st = put_file(seal, dir, path, file, buf, n);
    sodium_memzero(buf, n);
    free(buf);
    return st;
}

static tern_status remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? TERN_OK : tern_err(TERN_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return tern_err(TERN_EIO, "%s: cannot open folder: %s", path, strerror(errno));
        struct dirent *e;
        tern_status st = TERN_OK;
        while (st == TERN_OK && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *sub = tern_path_join(path, e->d_name);
            st = sub ? remove_tree(sub) : tern_err(TERN_ENOMEM, "out of memory");
            free(sub);
        }
        closedir(d);
        if (st != TERN_OK) return st;
        if (rmdir(path) != 0) return tern_err(TERN_EIO, "%s: cannot remove folder: %s", path, strerror(errno));
    } else if (unlink(path) != 0) {
        return tern_err(TERN_EIO, "%s: cannot remove: %s", path, strerror(errno));
    }
    return TERN_OK;
}

/* Removes a step folder so that no one ever sees it half-deleted: it is first renamed out of the
 * step-* names (one atomic rename, made durable), then deleted. A kill during the deletion leaves a
 * hidden .del-* folder, which the next prune clears; the ledger and loaders never look at it. */
static tern_status discard_tree(const char *ckroot, const char *name) {
    char *path = tern_path_join(ckroot, name);
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        tern_status st = errno == ENOENT ? TERN_OK : tern_err(TERN_EIO, "%s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    char trashname[128];
    snprintf(trashname, sizeof trashname, ".del-%s-%ld", name, (long)getpid());
    char *trash = tern_path_join(ckroot, trashname);
    tern_status st = trash ? remove_tree(trash) : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK && rename(path, trash) != 0)
        st = tern_err(TERN_EIO, "%s: cannot move aside to remove it: %s", path, strerror(errno));
    if (st == TERN_OK) st = tern_fsync_dir(ckroot);
    if (st == TERN_OK) st = remove_tree(trash);
    free(trash);
    free(path);
    return st;
}

static tern_status fetch_moments(void *ctx, size_t tag, size_t off, void *dst, size_t n) {
    /* tag: the tensor's offset, with the top bit set for the second moments */
    int second = (tag >> (sizeof(size_t) * 8 - 1)) & 1;
    size_t base = tag & ~((size_t)1 << (sizeof(size_t) * 8 - 1));
    return tern_adamw_read(ctx, second, base + off / sizeof(float), n / sizeof(float), dst);
}

static tern_status write_optimizer(const tern_ckpt_seal *seal, const char *dir, const char *path, tern_model *m, tern_adamw *opt,
                                   uint64_t step) {
    tern_st_writer *w;
    TERN_TRY(tern_st_writer_init(&w));
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    char stepbuf[32];
    snprintf(stepbuf, sizeof stepbuf, "%llu", (unsigned long long)step);
    tern_status st = tern_st_add_meta(w, "step", stepbuf);
    TERN_ASSERT(opt->begin == 0 && opt->end == tern_model_num_params(m));
    const size_t top = (size_t)1 << (sizeof(size_t) * 8 - 1);
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "exp_avg.%s", t[i].name);
        st = tern_st_add_fetch(w, name, TERN_DT_F32, t[i].ndim, t[i].shape, fetch_moments, opt, t[i].offset);
        snprintf(name, sizeof name, "exp_avg_sq.%s", t[i].name);
        if (st == TERN_OK) st = tern_st_add_fetch(w, name, TERN_DT_F32, t[i].ndim, t[i].shape, fetch_moments, opt, t[i].offset | top);
    }
    if (st == TERN_OK) st = write_st(seal, w, dir, path, "optimizer.safetensors");
    tern_st_writer_free(w);
    return st;
}

static int is_step_dir(const char *name, unsigned long long *step) {
    if (strncmp(name, "step-", 5) != 0) return 0;
    char *end;
    *step = strtoull(name + 5, &end, 10);
    return *end == 0 && end != name + 5;
}

static int cmp_ull(const void *a, const void *b) {
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return (x > y) - (x < y);
}

/* Removes all but the newest `keep` step folders, and the half-written hidden folders that killed
 * runs left, writing or removing (one process writes a run's checkpoints, so no other writer can
 * own them). */
static tern_status prune(const char *ckroot, int keep) {
    DIR *d = opendir(ckroot);
    if (!d) return tern_err(TERN_EIO, "%s: cannot open folder: %s", ckroot, strerror(errno));
    unsigned long long steps[4096];
    size_t n = 0;
    struct dirent *e;
    tern_status st = TERN_OK;
    while ((e = readdir(d)) && st == TERN_OK) {
        unsigned long long s;
        if (is_step_dir(e->d_name, &s) && n < sizeof steps / sizeof steps[0]) {
            steps[n++] = s;
        } else if (!strncmp(e->d_name, ".tmp-step-", 10) || !strncmp(e->d_name, ".del-step-", 10)) {
            char *p = tern_path_join(ckroot, e->d_name);
            st = p ? remove_tree(p) : tern_err(TERN_ENOMEM, "out of memory");
            free(p);
        }
    }
    closedir(d);
    if (st != TERN_OK) return st;
    qsort(steps, n, sizeof steps[0], cmp_ull);
    for (size_t i = 0; keep > 0 && i + (size_t)keep < n && st == TERN_OK; i++) {
        char name[64];
        snprintf(name, sizeof name, "step-%06llu", steps[i]);
        st = discard_tree(ckroot, name);
    }
    return st;
}

tern_status tern_ckpt_save(const char *rundir, uint64_t step, tern_model *m, tern_adamw *opt, const char *state_json, int keep,
                           const tern_ckpt_seal *seal) {
    char *ckroot = tern_path_join(rundir, "ckpt");
    if (!ckroot) return tern_err(TERN_ENOMEM, "out of memory");
    char name[64], tmpname[96];
    snprintf(name, sizeof name, "step-%06llu", (unsigned long long)step);
    snprintf(tmpname, sizeof tmpname, ".tmp-%s-%ld", name, (long)getpid());
    char *final = tern_path_join(ckroot, name), *tmp = tern_path_join(ckroot, tmpname);
    char *fm = NULL, *fo = NULL, *fs = NULL;
    tern_status st = (!final || !tmp) ? tern_err(TERN_ENOMEM, "out of memory") : tern_mkdir_p(ckroot);
    if (st == TERN_OK) st = remove_tree(tmp);
    if (st == TERN_OK && mkdir(tmp, 0755) != 0) st = tern_err(TERN_EIO, "%s: cannot create folder: %s", tmp, strerror(errno));
    if (st == TERN_OK) {
        fm = tern_path_join(tmp, "model.safetensors");
        fo = tern_path_join(tmp, "optimizer.safetensors");
        fs = tern_path_join(tmp, "state.json");
        if (!fm || !fo || !fs) st = tern_err(TERN_ENOMEM, "out of memory");
    }
    if (st == TERN_OK) {
        tern_st_writer *w = NULL;
        st = tern_st_writer_init(&w);
        if (st == TERN_OK) st = tern_params_to_st(m, ckpt_prefix(m), w);
        if (st == TERN_OK) st = write_st(seal, w, final, fm, "model.safetensors");
        tern_st_writer_free(w);
    }
    if (st == TERN_OK) st = write_optimizer(seal, final, fo, m, opt, step);
    if (st == TERN_OK) st = put_file(seal, final, fs, "state.json", state_json, strlen(state_json));
    if (st == TERN_OK) st = tern_fsync_dir(tmp);
    /* A complete folder of this step may exist from a run that died before switching `latest`;
     * the new one replaces it. */
    if (st == TERN_OK) st = discard_tree(ckroot, name);
    if (st == TERN_OK && rename(tmp, final) != 0)
        st = tern_err(TERN_EIO, "%s: cannot rename checkpoint into place: %s", final, strerror(errno));
    if (st == TERN_OK) st = tern_fsync_dir(ckroot);
    if (st == TERN_OK) {
        char *latest = tern_path_join(ckroot, "latest");
        char line[80];
        int k = snprintf(line, sizeof line, "%s\n", name);
        st = latest ? tern_write_file_atomic(latest, line, (size_t)k) : tern_err(TERN_ENOMEM, "out of memory");
        free(latest);
    }
    if (st == TERN_OK) st = prune(ckroot, keep);
    if (st != TERN_OK && tmp) {
        tern_status keep_st = st;
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", tern_errmsg());
        remove_tree(tmp);
        tern_err(keep_st, "%s", msg);
    }
    free(fm);
    free(fo);
    free(fs);
    free(final);
    free(tmp);
    free(ckroot);
    return st;
}

tern_status tern_ckpt_latest(const char *rundir, char **ckptdir) {
    *ckptdir = NULL;
    char *ckroot = tern_path_join(rundir, "ckpt");
    char *latest = ckroot ? tern_path_join(ckroot, "latest") : NULL;
    if (!latest) {
        free(ckroot);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    char *text;
    size_t n;
    tern_status st = tern_read_file(latest, &text, &n);
    if (st == TERN_ENOTFOUND) st = tern_err(TERN_ENOTFOUND, "%s: the run has no checkpoint (no %s)", rundir, latest);
    if (st == TERN_OK) {
        while (n && (text[n - 1] == '\n' || text[n - 1] == ' ')) text[--n] = 0;
        unsigned long long step;
        if (!is_step_dir(text, &step) || strchr(text, '/')) {
            st = tern_err(TERN_EFORMAT, "%s: does not name a checkpoint folder (found \"%.40s\")", latest, text);
        } else {
            *ckptdir = tern_path_join(ckroot, text);
            struct stat sb;
            if (!*ckptdir)
                st = tern_err(TERN_ENOMEM, "out of memory");
            else if (stat(*ckptdir, &sb) != 0 || !S_ISDIR(sb.st_mode))
                st = tern_err(TERN_ENOTFOUND, "%s: names %s, which does not exist", latest, text);
        }
        free(text);
    }
    if (st != TERN_OK) {
        free(*ckptdir);
        *ckptdir = NULL;
    }
    free(latest);
    free(ckroot);
    return st;
}

tern_status tern_ckpt_at_step(const char *rundir, uint64_t step, char **ckptdir) {
    char rel[64];
    snprintf(rel, sizeof rel, "ckpt/step-%06llu", (unsigned long long)step);
    *ckptdir = tern_path_join(rundir, rel);
    if (!*ckptdir) return tern_err(TERN_ENOMEM, "out of memory");
    struct stat sb;
    if (stat(*ckptdir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        tern_status st = tern_err(TERN_ENOTFOUND, "%s: no checkpoint of step %llu (looked for %s)", rundir,
                                  (unsigned long long)step, *ckptdir);
        free(*ckptdir);
        *ckptdir = NULL;
        return st;
    }
    return TERN_OK;
}

tern_status tern_ckpt_load_model(const char *ckptdir, tern_model *m, const tern_ckpt_seal *seal) {
    tern_safetensors *sf;
    tern_plain pl;
    TERN_TRY(open_st(seal, &sf, &pl, ckptdir, "model.safetensors"));
    tern_status s = tern_params_from_st(m, sf, ckpt_prefix(m), NULL, NULL);
    tern_st_free(sf);
    tern_plain_free(&pl);
    return s;
}

tern_status tern_ckpt_load_optimizer(const char *ckptdir, tern_model *m, tern_adamw *opt, const tern_ckpt_seal *seal) {
    tern_safetensors *sf;
    tern_plain pl;
    TERN_TRY(open_st(seal, &sf, &pl, ckptdir, "optimizer.safetensors"));
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    size_t most = 0;
    for (size_t i = 0; i < n; i++) most = t[i].numel > most ? t[i].numel : most;
    float *buf = malloc((most ? most : 1) * sizeof(float));
    tern_status s = buf ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory reading %s", tern_st_label(sf));
    /* every tensor is checked; the part inside opt's range goes to the backend */
    for (size_t i = 0; s == TERN_OK && i < n; i++) {
        size_t lo = t[i].offset > opt->begin ? t[i].offset : opt->begin;
        size_t hi = t[i].offset + t[i].numel < opt->end ? t[i].offset + t[i].numel : opt->end;
        for (int second = 0; s == TERN_OK && second < 2; second++) {
            char name[128];
            snprintf(name, sizeof name, "%s.%s", second ? "exp_avg_sq" : "exp_avg", t[i].name);
            s = tern_st_read_f32(sf, name, buf, t[i].ndim, t[i].shape);
            if (s == TERN_OK && lo < hi) s = tern_adamw_write(opt, second, lo, hi - lo, buf + (lo - t[i].offset));
        }
    }
    free(buf);
    if (s == TERN_OK && tern_st_count(sf) != 2 * n)
        s = tern_err(TERN_EFORMAT, "%s: has %zu tensors, expected %zu (two moments per parameter tensor)", tern_st_label(sf),
                     tern_st_count(sf), 2 * n);
    tern_st_free(sf);
    tern_plain_free(&pl);
    return s;
}

tern_status tern_ckpt_read_state(const char *ckptdir, char **json, const tern_ckpt_seal *seal) {
    *json = NULL;
    tern_plain pl;
    TERN_TRY(get_file(seal, ckptdir, "state.json", &pl));
    *json = malloc(pl.size + 1);
    if (*json) {
        if (pl.size) memcpy(*json, pl.data, pl.size);
        (*json)[pl.size] = 0;
    }
    tern_plain_free(&pl);
    return *json ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
}
