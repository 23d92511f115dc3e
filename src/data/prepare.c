/* `prepare`: text files -> token shards + manifest, streaming (the tokenizer reads each file in
 * blocks; shards are written as the ids come), so memory does not grow with the corpus. Each
 * file is one document preceded by <|endoftext|>; documents go to train or val by a keyed hash
 * of their bytes, or, with a single document, its last tokens go to val. Not the loader. The
 * split rule is in docs/FORMATS.md "Data manifest". */
#include "tern/data.h"
#include "tern/secure.h"
#include "tern/tok.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const tern_prepare_opts *o;
    size_t vocab;
    tern_split cur;                  /* the split the current document goes to */
    tern_shard_writer *w[2];         /* the open shard of each split, or NULL */
    size_t next_index[2];            /* the number of the next shard file of each split */
    tern_manifest_shard *shards;     /* finished shards, in order */
    size_t n_shards, cap;
} prep;

static const char *split_name(tern_split s) { return s == TERN_SPLIT_VAL ? "val" : "train"; }

static char *shard_name(tern_split s, size_t index) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%06zu.bin", split_name(s), index);
    return strdup(buf);
}

static tern_status add_entry(prep *p, char *file, tern_split s, uint64_t n, const uint8_t *sum) {
    if (p->n_shards == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        tern_manifest_shard *x = realloc(p->shards, cap * sizeof *x);
        if (!x) {
            free(file);
            return tern_err(TERN_ENOMEM, "out of memory");
        }
        p->shards = x;
        p->cap = cap;
    }
    tern_manifest_shard *e = &p->shards[p->n_shards++];
    e->file = file;
    e->split = s;
    e->n_tokens = n;
    memcpy(e->checksum, sum, TERN_HASH_BYTES);
    return TERN_OK;
}

/* A shard writer for DATADIR/name: sealed as "shard <name>" when a key is given. */
static tern_status writer_open(const prep *p, tern_shard_writer **w, const char *name) {
    char *path = tern_path_join(p->o->out_dir, name);
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    char ident[300];
    snprintf(ident, sizeof ident, "shard %s", name);
    tern_status st = tern_shard_writer_open_key(w, path, p->vocab, p->o->key, ident);
    free(path);
    return st;
}

static tern_status open_shard(prep *p, tern_split s) {
    char *name = shard_name(s, p->next_index[s]);
    if (!name) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = writer_open(p, &p->w[s], name);
    free(name);
    if (st == TERN_OK) p->next_index[s]++;
    return st;
}

static tern_status close_shard(prep *p, tern_split s) {
    if (!p->w[s]) return TERN_OK;
    uint64_t n;
    uint8_t sum[TERN_HASH_BYTES];
    tern_status st = tern_shard_writer_close(p->w[s], &n, sum);
    p->w[s] = NULL;
    if (st != TERN_OK) return st;
    char *name = shard_name(s, p->next_index[s] - 1);
    if (!name) return tern_err(TERN_ENOMEM, "out of memory");
    return add_entry(p, name, s, n, sum);
}

/* Appends ids to the current split's shards, starting a new shard every shard_tokens. */
static tern_status sink(void *ctx, const int32_t *ids, size_t n) {
    prep *p = ctx;
    tern_split s = p->cur;
    while (n) {
        if (!p->w[s]) TERN_TRY(open_shard(p, s));
        uint64_t room = p->o->shard_tokens - tern_shard_writer_count(p->w[s]);
        size_t k = room < n ? (size_t)room : n;
        TERN_TRY(tern_shard_writer_add(p->w[s], ids, k));
        ids += k;
        n -= k;
        if (tern_shard_writer_count(p->w[s]) == p->o->shard_tokens) TERN_TRY(close_shard(p, s));
    }
    return TERN_OK;
}

/* The split of a document: val when BLAKE2b-256(seed as 8 little-endian bytes || the document's
 * bytes), read as a little-endian integer from its first 8 bytes, is below val_fraction * 2^64. */
static tern_status doc_split(const char *path, uint64_t seed, double frac, tern_split *out) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
    tern_hasher h;
    tern_hash_init(&h);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(seed >> (8 * i));
    tern_hash_update(&h, le, 8);
    static _Thread_local uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return tern_err(TERN_EIO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        tern_hash_update(&h, buf, (size_t)r);
    }
    close(fd);
    uint8_t sum[TERN_HASH_BYTES];
    tern_hash_final(&h, sum);
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)sum[i] << (8 * i);
    *out = (double)(u >> 11) * 0x1p-53 < frac ? TERN_SPLIT_VAL : TERN_SPLIT_TRAIN;
    return TERN_OK;
}

/* One document: the last val_fraction of its tokens become val shards. The train shards are
 * already written; those past the cut are renamed, and the one the cut falls in is split in two. */
static tern_status split_tail(prep *p) {
    uint64_t total = 0;
    for (size_t i = 0; i < p->n_shards; i++) total += p->shards[i].n_tokens;
    uint64_t n_val = (uint64_t)((double)total * p->o->val_fraction);
    if (n_val == 0) return TERN_OK;
    uint64_t n_train = total - n_val, at = 0;
    tern_status st = TERN_OK;
    size_t nval_files = 0;
    tern_manifest_shard *old = p->shards;
    size_t nold = p->n_shards;
    p->shards = NULL;
    p->n_shards = p->cap = 0;
    for (size_t i = 0; i < nold && st == TERN_OK; i++) {
        tern_manifest_shard *e = &old[i];
        uint64_t start = at;
        at += e->n_tokens;
        if (at <= n_train) { /* wholly train */
            st = add_entry(p, e->file, TERN_SPLIT_TRAIN, e->n_tokens, e->checksum);
            e->file = NULL;
            continue;
        }
        char *from = tern_path_join(p->o->out_dir, e->file);
        if (!from) {
            st = tern_err(TERN_ENOMEM, "out of memory");
            break;
        }
        if (start >= n_train && !p->o->key) { /* wholly val: rename (a sealed shard is bound to its name: rewritten below) */
            char *name = shard_name(TERN_SPLIT_VAL, nval_files++);
            char *to = name ? tern_path_join(p->o->out_dir, name) : NULL;
            if (!to) st = tern_err(TERN_ENOMEM, "out of memory");
            else if (rename(from, to) != 0) st = tern_err(TERN_EIO, "%s: cannot rename to %s: %s", from, to, strerror(errno));
            if (st == TERN_OK) {
                st = add_entry(p, name, TERN_SPLIT_VAL, e->n_tokens, e->checksum);
                name = NULL;
            }
            free(name);
            free(to);
            free(from);
            continue;
        }
        /* the cut is inside this shard: rewrite its head as train, its tail as the first val shard
         * (a sealed shard wholly past the cut is rewritten as a val shard: its head is empty) */
        tern_map map = {0};
        tern_plain pl = {0};
        tern_shard_view v;
        if (p->o->key) {
            char ident[300];
            snprintf(ident, sizeof ident, "shard %s", e->file);
            st = tern_unseal_file(&pl, from, p->o->key, ident);
            map.data = pl.data;
            map.size = pl.size;
        } else {
            st = tern_map_file(&map, from);
        }
        if (st == TERN_OK) st = tern_shard_parse(&v, map.data, map.size, from, 0);
        uint64_t cut = start >= n_train ? 0 : n_train - start;
        int32_t *tmp = st == TERN_OK ? malloc(sizeof(int32_t) << 16) : NULL;
        if (st == TERN_OK && !tmp) st = tern_err(TERN_ENOMEM, "out of memory");
        tern_split sp[2] = {TERN_SPLIT_TRAIN, TERN_SPLIT_VAL};
        uint64_t lo[2] = {0, cut}, hi[2] = {cut, e->n_tokens};
        for (int part = 0; part < 2 && st == TERN_OK; part++) {
            if (part == 0 && cut == 0) { /* nothing stays train: the file goes */
                if (unlink(from) != 0) st = tern_err(TERN_EIO, "%s: cannot remove: %s", from, strerror(errno));
                continue;
            }
            char *name = part == 0 ? strdup(e->file) : shard_name(TERN_SPLIT_VAL, nval_files++);
            char *path = name ? tern_path_join(p->o->out_dir, name) : NULL;
            tern_shard_writer *w = NULL;
            st = path ? writer_open(p, &w, name) : tern_err(TERN_ENOMEM, "out of memory");
            for (uint64_t k = lo[part]; k < hi[part] && st == TERN_OK;) {
                size_t m = hi[part] - k < ((uint64_t)1 << 16) ? (size_t)(hi[part] - k) : (size_t)1 << 16;
                for (size_t j = 0; j < m; j++) tmp[j] = (int32_t)tern_shard_token(&v, k + j);
                st = tern_shard_writer_add(w, tmp, m);
                k += m;
            }
            uint64_t n;
            uint8_t sum[TERN_HASH_BYTES];
            if (st == TERN_OK) st = tern_shard_writer_close(w, &n, sum);
            else tern_shard_writer_abort(w);
            if (st == TERN_OK) {
                st = add_entry(p, name, sp[part], n, sum);
                name = NULL;
            }
            free(name);
            free(path);
        }
        if (tmp) sodium_memzero(tmp, sizeof(int32_t) << 16);
        free(tmp);
        if (p->o->key) tern_plain_free(&pl);
        else tern_unmap(&map);
        free(from);
    }
    for (size_t i = 0; i < nold; i++) free(old[i].file);
    free(old);
    if (st == TERN_OK) st = tern_fsync_dir(p->o->out_dir);
    return st;
}

/* Removes {train,val}_NNNNNN.bin files that the new manifest does not list. */
static void remove_stale(const char *dir, const tern_manifest *m) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n), pre = !strncmp(n, "train_", 6) ? 6 : !strncmp(n, "val_", 4) ? 4 : 0;
        if (!pre || len != pre + 10 || strcmp(n + pre + 6, ".bin")) continue;
        int digits = 1;
        for (size_t i = pre; i < pre + 6; i++) digits &= n[i] >= '0' && n[i] <= '9';
        if (!digits) continue;
        int listed = 0;
        for (size_t i = 0; i < m->n_shards && !listed; i++) listed = !strcmp(m->shards[i].file, n);
        if (listed) continue;
        char *path = tern_path_join(dir, n);
        if (path) unlink(path);
        free(path);
    }
    closedir(d);
}

tern_status tern_data_prepare(const tern_prepare_opts *o, tern_manifest *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!o->n_files) return tern_err(TERN_EINVAL, "no text files to prepare");
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return tern_err(TERN_EINVAL, "the validation fraction must be at least 0 and below 1, got %g", o->val_fraction);
    if (o->shard_tokens < 1) return tern_err(TERN_EINVAL, "a shard must hold at least 1 token");
    tern_tok *tok;
    TERN_TRY(tern_tok_load_key(&tok, o->tokenizer_dir, o->key));
    prep p = {.o = o, .vocab = tern_tok_vocab_size(tok)};
    tern_manifest m;
    memset(&m, 0, sizeof m);
    tern_status st = tern_mkdir_p(o->out_dir);
    /* an earlier manifest goes first: if this prepare fails, no manifest names half-written shards */
    char *mpath = tern_path_join(o->out_dir, "manifest.json");
    if (st == TERN_OK && !mpath) st = tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK && unlink(mpath) != 0 && errno != ENOENT)
        st = tern_err(TERN_EIO, "%s: cannot remove the old manifest: %s", mpath, strerror(errno));
    free(mpath);
    int32_t eot = tern_tok_eot(tok);
    for (size_t f = 0; f < o->n_files && st == TERN_OK; f++) {
        const char *path = o->files[f];
        p.cur = TERN_SPLIT_TRAIN;
        if (o->val_fraction > 0 && o->n_files > 1) st = doc_split(path, o->seed, o->val_fraction, &p.cur);
        if (st != TERN_OK) break;
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            st = tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        st = sink(&p, &eot, 1);
        if (st == TERN_OK) st = tern_tok_encode_fd(tok, fd, path, sink, &p);
        close(fd);
        if (st == TERN_OK) m.docs[p.cur]++;
    }
    for (int s = 0; s < 2 && st == TERN_OK; s++) st = close_shard(&p, (tern_split)s);
    if (st == TERN_OK && o->val_fraction > 0 && o->n_files == 1) {
        m.docs[0] = 1;
        st = split_tail(&p);
    }
    if (st == TERN_OK) {
        /* train shards first, then val, each in the order written */
        tern_manifest_shard *sorted = malloc((p.n_shards ? p.n_shards : 1) * sizeof *sorted);
        if (!sorted) st = tern_err(TERN_ENOMEM, "out of memory");
        size_t k = 0;
        for (int s = 0; s < 2 && sorted; s++)
            for (size_t i = 0; i < p.n_shards; i++)
                if ((int)p.shards[i].split == s) sorted[k++] = p.shards[i];
        if (sorted) {
            free(p.shards);
            p.shards = sorted;
        }
    }
    if (st == TERN_OK) {
        memcpy(m.tokenizer_hash, tern_tok_hash(tok), TERN_HASH_BYTES);
        m.vocab_size = p.vocab;
        m.eot = eot;
        m.bytes_per_token = tern_shard_bytes_per_token(p.vocab);
        m.val_fraction = o->val_fraction;
        m.seed = o->seed;
        m.n_shards = p.n_shards;
        m.shards = p.shards;
        p.shards = NULL;
        p.n_shards = 0;
        st = tern_manifest_write_key(&m, o->out_dir, o->key);
        if (st == TERN_OK) remove_stale(o->out_dir, &m);
    }
    for (int s = 0; s < 2; s++) tern_shard_writer_abort(p.w[s]);
    for (size_t i = 0; i < p.n_shards; i++) free(p.shards[i].file);
    free(p.shards);
    tern_tok_free(tok);
    if (st == TERN_OK && out) *out = m;
    else tern_manifest_free(&m);
    return st;
}
