/* Files: atomic writes (temporary file, fsync, rename, fsync of the folder), whole-file reads
 * for small files, and read-only maps for large ones. Every failure names the path and the
 * system's reason. */
#include "tern/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned tmp_counter;

char *tern_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    size_t k = na;
    if (na && a[na - 1] != '/') p[k++] = '/';
    memcpy(p + k, b, nb + 1);
    return p;
}

int tern_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

tern_status tern_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return tern_err(TERN_EIO, "%s: cannot open folder to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems (e.g. some FUSE mounts) refuse fsync on folders; that is not a fault. */
    if (rc != 0 && e != EINVAL && e != ENOTSUP) return tern_err(TERN_EIO, "%s: fsync of folder failed: %s", dir, strerror(e));
    return TERN_OK;
}

tern_status tern_mkdir_p(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return tern_err(TERN_EINVAL, "bad folder path '%s'", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return tern_err(TERN_EIO, "%s: cannot create folder: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return tern_err(TERN_EIO, "%s: exists and is not a folder", dir);
    return TERN_OK;
}

tern_status tern_afile_open(tern_afile *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 64;
    af->path = strdup(path);
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return tern_err(TERN_ENOMEM, "out of memory opening %s", path);
    }
    snprintf(af->tmp, n, "%s.tmp-%ld-%u", path, (long)getpid(), __atomic_fetch_add(&tmp_counter, 1, __ATOMIC_RELAXED));
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        tern_status st = tern_err(TERN_EIO, "%s: cannot create: %s", af->tmp, strerror(errno));
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return st;
    }
    return TERN_OK;
}

tern_status tern_afile_write(tern_afile *af, const void *p, size_t n) {
    if (af->failed) return TERN_EIO;
    if (n && fwrite(p, 1, n, af->f) != n) {
        af->failed = 1;
        return tern_err(TERN_EIO, "%s: write failed: %s", af->path, strerror(errno));
    }
    return TERN_OK;
}

tern_status tern_afile_printf(tern_afile *af, const char *fmt, ...) {
    if (af->failed) return TERN_EIO;
    va_list ap;
    va_start(ap, fmt);
    int rc = vfprintf(af->f, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        af->failed = 1;
        return tern_err(TERN_EIO, "%s: write failed: %s", af->path, strerror(errno));
    }
    return TERN_OK;
}

static void afile_release(tern_afile *af) {
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

void tern_afile_abort(tern_afile *af) {
    if (!af->f) return;
    fclose(af->f);
    unlink(af->tmp);
    afile_release(af);
}

tern_status tern_afile_commit(tern_afile *af) {
    tern_status st = TERN_OK;
    if (af->failed) {
        st = TERN_EIO; /* message already set by the failed write */
    } else if (fflush(af->f) != 0) {
        st = tern_err(TERN_EIO, "%s: write failed: %s", af->path, strerror(errno));
    } else if (fsync(fileno(af->f)) != 0) {
        st = tern_err(TERN_EIO, "%s: fsync failed: %s", af->path, strerror(errno));
    }
    if (fclose(af->f) != 0 && st == TERN_OK) st = tern_err(TERN_EIO, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (st == TERN_OK && rename(af->tmp, af->path) != 0)
        st = tern_err(TERN_EIO, "%s: cannot rename temporary file into place: %s", af->path, strerror(errno));
    if (st != TERN_OK) {
        unlink(af->tmp);
    } else {
        char *d = strdup(af->path);
        if (d) {
            st = tern_fsync_dir(dirname(d));
            free(d);
        }
    }
    afile_release(af);
    return st;
}

tern_status tern_write_file_atomic(const char *path, const void *p, size_t n) {
    tern_afile af;
    TERN_TRY(tern_afile_open(&af, path));
    tern_status st = tern_afile_write(&af, p, n);
    if (st != TERN_OK) {
        tern_afile_abort(&af);
        return st;
    }
    return tern_afile_commit(&af);
}

tern_status tern_read_file(const char *path, char **out, size_t *size) {
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tern_err(TERN_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return tern_err(TERN_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return tern_err(TERN_EIO, "%s: read failed at byte %zu of %zu: %s", path, got, n, r == 0 ? "file shrank" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *size = n;
    return TERN_OK;
}

tern_status tern_map_file(tern_map *m, const char *path) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tern_err(TERN_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return TERN_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return tern_err(TERN_EIO, "%s: mmap failed: %s", path, strerror(e));
    m->data = p;
    m->size = (size_t)st.st_size;
    return TERN_OK;
}

void tern_unmap(tern_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
