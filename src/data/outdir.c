/* The output folder of `prepare`: what may be replaced (nothing but an empty folder or, when
 * asked, an earlier data folder), the hidden stage beside it that receives every file, and the
 * one rename that publishes it, so that a prepare killed at any moment leaves no part of a data
 * folder where the data folder belongs. Not the shards (shard.c) or the manifest (manifest.c).
 * The same write-then-rename discipline as checkpoints (docs/FORMATS.md "Run folder"). */
#include "data/data_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int data_remove_tree(const char *path) { return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* The names a data folder holds: manifest.json, tokenizer/, shards, and their temporary files. */
static int data_folder_name(const char *n) {
    size_t k = 0;
    if (!strncmp(n, "manifest.json", 13)) k = 13;
    else if (!strncmp(n, "tokenizer", 9)) k = 9;
    else {
        size_t pre = !strncmp(n, "train_", 6) ? 6 : !strncmp(n, "val_", 4) ? 4 : 0;
        if (!pre) return 0;
        k = pre;
        while (n[k] >= '0' && n[k] <= '9') k++;
        if (k < pre + 6 || strncmp(n + k, ".bin", 4)) return 0;
        k += 4;
    }
    return n[k] == 0 || !strncmp(n + k, ".tmp-", 5);
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

tern_status data_stage_check(data_stage *s, const char *out_dir, int force) {
    memset(s, 0, sizeof *s);
    size_t n = strlen(out_dir);
    while (n > 1 && out_dir[n - 1] == '/') n--;
    const char *slash = memrchr(out_dir, '/', n);
    const char *base = slash ? slash + 1 : out_dir;
    size_t bn = (size_t)(out_dir + n - base);
    if (bn == 0 || (bn == 1 && base[0] == '.') || (bn == 2 && !strncmp(base, "..", 2)))
        return tern_err(TERN_EINVAL, "-o %s: name the data folder itself (not /, . or ..)", out_dir);
    s->out = dup_n(out_dir, n);
    s->parent = slash ? dup_n(out_dir, slash == out_dir ? 1 : (size_t)(slash - out_dir)) : strdup(".");
    if (!s->out || !s->parent) return tern_err(TERN_ENOMEM, "out of memory");
    struct stat sb;
    if (stat(s->out, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return TERN_OK;
        return tern_err(TERN_EIO, "%s: cannot look at it: %s", s->out, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) return tern_err(TERN_EINVAL, "%s exists and is not a folder; choose another -o", s->out);
    DIR *d = opendir(s->out);
    if (!d) return tern_err(TERN_EIO, "%s: cannot read the folder: %s", s->out, strerror(errno));
    int any = 0;
    char foreign[300] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        any = 1;
        if (!data_folder_name(e->d_name) && !foreign[0]) snprintf(foreign, sizeof foreign, "%s", e->d_name);
    }
    closedir(d);
    if (!any) return TERN_OK; /* an empty folder is replaced by the rename itself */
    if (foreign[0])
        return tern_err(TERN_EINVAL, "%s exists and is not a tern data folder (it holds %s); choose another -o", s->out, foreign);
    if (!force)
        return tern_err(TERN_EINVAL, "%s already holds a data folder; give --force to replace it (runs made from it will no longer match it), or choose another -o",
                        s->out);
    s->replace = 1;
    return TERN_OK;
}

/* Removes the stages of earlier prepares into the same DATADIR whose process is gone. */
static void remove_stale(const data_stage *s, const char *prefix) {
    DIR *d = opendir(s->parent);
    if (!d) return;
    size_t k = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, k)) continue;
        char *end;
        long pid = strtol(e->d_name + k, &end, 10);
        if ((*end && strcmp(end, ".old")) || pid <= 0) continue;
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH)) continue; /* still running */
        char *path = tern_path_join(s->parent, e->d_name);
        if (path) data_remove_tree(path);
        free(path);
    }
    closedir(d);
}

tern_status data_stage_begin(data_stage *s) {
    /* the missing folders above DATADIR, innermost first, then made outermost first */
    char *p = strdup(s->parent);
    while (p && !tern_path_exists(p)) {
        char **x = realloc(s->made, (s->n_made + 1) * sizeof *x);
        if (!x) break;
        s->made = x;
        s->made[s->n_made++] = p;
        char *slash = strrchr(p, '/');
        p = slash ? dup_n(p, slash == p ? 1 : (size_t)(slash - p)) : NULL;
    }
    free(p);
    for (size_t i = 0, j = s->n_made ? s->n_made - 1 : 0; i < j; i++, j--) {
        char *t = s->made[i];
        s->made[i] = s->made[j];
        s->made[j] = t;
    }
    for (size_t i = 0; i < s->n_made; i++) {
        if (mkdir(s->made[i], 0755) != 0 && errno != EEXIST)
            return tern_err(TERN_EIO, "%s: cannot create the folder: %s", s->made[i], strerror(errno));
        s->n_created = i + 1;
    }
    const char *slash = strrchr(s->out, '/');
    const char *base = slash ? slash + 1 : s->out;
    char prefix[600], name[640];
    snprintf(prefix, sizeof prefix, ".%s.tern-prepare-", base);
    remove_stale(s, prefix);
    snprintf(name, sizeof name, "%s%ld", prefix, (long)getpid());
    s->stage = tern_path_join(s->parent, name);
    if (!s->stage) return tern_err(TERN_ENOMEM, "out of memory");
    if (mkdir(s->stage, 0755) != 0) {
        tern_status st = tern_err(TERN_EIO, "%s: cannot create the folder: %s", s->stage, strerror(errno));
        free(s->stage);
        s->stage = NULL;
        return st;
    }
    return TERN_OK;
}

tern_status data_stage_commit(data_stage *s) {
    TERN_TRY(tern_fsync_dir(s->stage));
    if (s->replace) {
        /* swap the two folders in one step; the old data then sits at the stage's name */
        if (renameat2(AT_FDCWD, s->stage, AT_FDCWD, s->out, RENAME_EXCHANGE) != 0) {
            if (errno != EINVAL && errno != ENOSYS)
                return tern_err(TERN_EIO, "%s: cannot replace it with %s: %s", s->out, s->stage, strerror(errno));
            /* a file system without the exchange: the old folder goes aside first */
            char old[700];
            snprintf(old, sizeof old, "%s.old", s->stage);
            if (rename(s->out, old) != 0) return tern_err(TERN_EIO, "%s: cannot move it aside: %s", s->out, strerror(errno));
            if (rename(s->stage, s->out) != 0)
                return tern_err(TERN_EIO, "%s: cannot rename %s to it: %s", s->out, s->stage, strerror(errno));
            data_remove_tree(old);
            s->stage[0] = 0;
        }
    } else if (rename(s->stage, s->out) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST)
            return tern_err(TERN_EIO, "%s: files appeared in it while preparing; nothing was replaced", s->out);
        return tern_err(TERN_EIO, "%s: cannot rename %s to it: %s", s->out, s->stage, strerror(errno));
    } else {
        s->stage[0] = 0;
    }
    s->committed = 1; /* the folders made above it hold the data folder now */
    return tern_fsync_dir(s->parent);
}

void data_stage_end(data_stage *s) {
    if (s->stage && s->stage[0]) data_remove_tree(s->stage);
    for (size_t i = s->committed ? 0 : s->n_created; i-- > 0;) rmdir(s->made[i]);
    for (size_t i = 0; i < s->n_made; i++) free(s->made[i]);
    free(s->made);
    free(s->stage);
    free(s->out);
    free(s->parent);
    memset(s, 0, sizeof *s);
}
