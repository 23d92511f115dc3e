/* The inputs of `prepare`: command-line arguments expanded into files (folders walked in sorted
 * order, `-` for standard input), and a stream of a file's bytes, decompressed when its first
 * bytes are zstd's or gzip's magic (libzstd and zlib), whatever its name. Not the parsing of
 * what the bytes hold (prepare.c, jsonl.c). docs/FORMATS.md "Inputs of prepare". */
#include "data/data_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* ---- one file's bytes ---- */

enum { RAW_PLAIN, RAW_ZSTD, RAW_GZIP };
#define IN_CAP ((size_t)64 << 10) /* under malloc's mmap threshold: a folder of small files costs no mmap each */

struct tern_text_stream {
    int fd, own_fd;
    char *name;
    int kind;
    uint8_t *in; /* compressed bytes read ahead (and, for plain files, the bytes peeked at) */
    size_t in_pos, in_len;
    int in_eof;
    uint64_t raw;       /* bytes read from the file so far */
    ZSTD_DStream *zs;
    size_t zlast;       /* ZSTD_decompressStream's last hint: 0 when a frame has just ended */
    z_stream gz;
    int gz_open;
    int gz_member_done; /* a gzip member has ended; another may follow */
    int done;
};

static tern_status fill(tern_text_stream *s) {
    if (s->in_pos == s->in_len) s->in_pos = s->in_len = 0;
    if (s->in_pos > 0 && s->in_len == IN_CAP) {
        memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
        s->in_len -= s->in_pos;
        s->in_pos = 0;
    }
    while (!s->in_eof && s->in_len < IN_CAP) {
        ssize_t r = read(s->fd, s->in + s->in_len, IN_CAP - s->in_len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return tern_err(TERN_EIO, "%s: read failed at byte %llu: %s", s->name, (unsigned long long)s->raw, strerror(errno));
        if (r == 0) s->in_eof = 1;
        s->in_len += (size_t)r;
        s->raw += (uint64_t)r;
        if (r > 0) break; /* a pipe gives what it has: do not wait for more than one read */
    }
    return TERN_OK;
}

/* Reads until at least k bytes are buffered or the file ends. */
static tern_status fill_to(tern_text_stream *s, size_t k) {
    while (s->in_len - s->in_pos < k && !s->in_eof) TERN_TRY(fill(s));
    return TERN_OK;
}

static const char *magic_refused(const uint8_t *p, size_t n) {
    if (n >= 6 && !memcmp(p, "\xFD" "7zXZ\0", 6)) return "xz";
    if (n >= 4 && !memcmp(p, "BZh", 3) && p[3] >= '1' && p[3] <= '9') return "bzip2";
    if (n >= 4 && !memcmp(p, "\x04\x22\x4D\x18", 4)) return "lz4";
    if (n >= 4 && !memcmp(p, "PK\x03\x04", 4)) return "zip";
    return NULL;
}

void tern_text_stream_close(tern_text_stream *s) {
    if (!s) return;
    if (s->own_fd && s->fd >= 0) close(s->fd);
    ZSTD_freeDStream(s->zs);
    if (s->gz_open) inflateEnd(&s->gz);
    free(s->in);
    free(s->name);
    free(s);
}

tern_status tern_text_stream_open(tern_text_stream **out, const char *path) {
    *out = NULL;
    int is_stdin = !strcmp(path, "-");
    tern_text_stream *s = calloc(1, sizeof *s);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory");
    s->fd = -1;
    s->name = strdup(is_stdin ? "standard input" : path);
    s->in = malloc(IN_CAP);
    if (!s->name || !s->in) {
        tern_text_stream_close(s);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    if (is_stdin) {
        s->fd = 0;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        s->own_fd = 1;
        if (s->fd < 0) {
            tern_status st = tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
            tern_text_stream_close(s);
            return st;
        }
    }
    tern_status st = fill_to(s, 6);
    const uint8_t *p = s->in;
    size_t n = s->in_len;
    const char *other = magic_refused(p, n);
    if (st == TERN_OK && other)
        st = tern_err(TERN_EFORMAT, "%s: %s-compressed; tern reads plain, zstd-compressed or gzip-compressed text", s->name, other);
    if (st == TERN_OK && n >= 4 && ((p[0] == 0x28 && p[1] == 0xB5 && p[2] == 0x2F && p[3] == 0xFD) ||
                                    ((p[0] & 0xF0) == 0x50 && p[1] == 0x2A && p[2] == 0x4D && p[3] == 0x18))) {
        s->kind = RAW_ZSTD; /* a frame, or a skippable frame */
        s->zs = ZSTD_createDStream();
        if (!s->zs) st = tern_err(TERN_ENOMEM, "out of memory");
    } else if (st == TERN_OK && n >= 2 && p[0] == 0x1F && p[1] == 0x8B) {
        s->kind = RAW_GZIP;
        if (inflateInit2(&s->gz, 15 + 16) != Z_OK) st = tern_err(TERN_ENOMEM, "out of memory");
        else s->gz_open = 1;
    }
    if (st != TERN_OK) {
        tern_text_stream_close(s);
        return st;
    }
    *out = s;
    return TERN_OK;
}

static tern_status read_zstd(tern_text_stream *s, uint8_t *buf, size_t cap, size_t *got) {
    ZSTD_outBuffer ob = {buf, cap, 0};
    while (ob.pos == 0) {
        if (s->in_pos == s->in_len) {
            if (s->in_eof) {
                if (s->zlast != 0)
                    return tern_err(TERN_EFORMAT, "%s: the zstd data ends in the middle of a frame (the file is cut short)", s->name);
                s->done = 1;
                break;
            }
            TERN_TRY(fill(s));
            continue;
        }
        ZSTD_inBuffer ib = {s->in, s->in_len, s->in_pos};
        size_t r = ZSTD_decompressStream(s->zs, &ob, &ib);
        if (ZSTD_isError(r))
            return tern_err(TERN_EFORMAT, "%s: not valid zstd data near byte %llu: %s", s->name,
                            (unsigned long long)(s->raw - (s->in_len - ib.pos)), ZSTD_getErrorName(r));
        s->in_pos = ib.pos;
        s->zlast = r;
    }
    *got = ob.pos;
    return TERN_OK;
}

static tern_status read_gzip(tern_text_stream *s, uint8_t *buf, size_t cap, size_t *got) {
    z_stream *z = &s->gz;
    size_t done = 0;
    while (done == 0) {
        if (s->gz_member_done) {
            /* another member may follow (concatenated .gz files are one stream to gzip -d) */
            TERN_TRY(fill_to(s, 2));
            if (s->in_pos == s->in_len) {
                s->done = 1;
                break;
            }
            if (s->in_len - s->in_pos < 2 || s->in[s->in_pos] != 0x1F || s->in[s->in_pos + 1] != 0x8B)
                return tern_err(TERN_EFORMAT, "%s: bytes that are not gzip data after the end of the gzip stream, at byte %llu", s->name,
                                (unsigned long long)(s->raw - (s->in_len - s->in_pos)));
            inflateReset(z);
            s->gz_member_done = 0;
        }
        if (s->in_pos == s->in_len) {
            if (s->in_eof) return tern_err(TERN_EFORMAT, "%s: the gzip data ends early (the file is cut short)", s->name);
            TERN_TRY(fill(s));
            continue;
        }
        size_t avail = s->in_len - s->in_pos, room = cap - done;
        z->next_in = s->in + s->in_pos;
        z->avail_in = avail > UINT32_MAX ? UINT32_MAX : (uInt)avail;
        z->next_out = buf + done;
        z->avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
        uInt in0 = z->avail_in, out0 = z->avail_out;
        int r = inflate(z, Z_NO_FLUSH);
        s->in_pos += in0 - z->avail_in;
        done += out0 - z->avail_out;
        if (r == Z_STREAM_END) s->gz_member_done = 1;
        else if (r == Z_MEM_ERROR) return tern_err(TERN_ENOMEM, "%s: out of memory decompressing gzip data", s->name);
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return tern_err(TERN_EFORMAT, "%s: not valid gzip data near byte %llu: %s", s->name,
                            (unsigned long long)(s->raw - (s->in_len - s->in_pos)), z->msg ? z->msg : "corrupt stream");
    }
    *got = done;
    return TERN_OK;
}

tern_status tern_text_stream_read(tern_text_stream *s, void *buf, size_t cap, size_t *got) {
    *got = 0;
    if (s->done || cap == 0) return TERN_OK;
    if (s->kind == RAW_ZSTD) return read_zstd(s, buf, cap, got);
    if (s->kind == RAW_GZIP) return read_gzip(s, buf, cap, got);
    if (s->in_pos < s->in_len) { /* the bytes read to look for a magic */
        size_t k = s->in_len - s->in_pos < cap ? s->in_len - s->in_pos : cap;
        memcpy(buf, s->in + s->in_pos, k);
        s->in_pos += k;
        *got = k;
        return TERN_OK;
    }
    if (s->in_eof) {
        s->done = 1;
        return TERN_OK;
    }
    for (;;) {
        ssize_t r = read(s->fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return tern_err(TERN_EIO, "%s: read failed at byte %llu: %s", s->name, (unsigned long long)s->raw, strerror(errno));
        if (r == 0) s->done = s->in_eof = 1;
        s->raw += (uint64_t)r;
        *got = (size_t)r;
        return TERN_OK;
    }
}

const char *tern_text_stream_compression(const tern_text_stream *s) {
    return s->kind == RAW_ZSTD ? "zstd" : s->kind == RAW_GZIP ? "gzip" : "none";
}
uint64_t tern_text_stream_raw_bytes(const tern_text_stream *s) { return s->raw; }
const char *tern_text_stream_name(const tern_text_stream *s) { return s->name; }

/* ---- arguments to files ---- */

void *data_grow(void *p, size_t *cap, size_t size, size_t first) {
    size_t n = *cap ? *cap * 2 : first;
    if (n < *cap || n > SIZE_MAX / size) return NULL;
    void *x = realloc(p, n * size);
    if (x) *cap = n;
    return x;
}

typedef struct {
    data_file *v;
    size_t n, cap;
} file_list;

static tern_status push_file(file_list *l, const char *path, uint32_t source, uint64_t size) {
    if (l->n == l->cap) {
        data_file *x = data_grow(l->v, &l->cap, sizeof *x, 16);
        if (!x) return tern_err(TERN_ENOMEM, "out of memory");
        l->v = x;
    }
    char *p = strdup(path);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory");
    l->v[l->n++] = (data_file){.path = p, .source = source, .size = size};
    return TERN_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files below dir, depth first, each folder's entries in byte order of their names. Names
 * that start with '.' are skipped; folders reached through a symbolic link are not entered (no
 * loops); other files that are not regular (sockets, devices) are skipped. */
static tern_status walk(file_list *l, const char *dir, uint32_t source) {
    DIR *d = opendir(dir);
    if (!d) return tern_err(TERN_EIO, "%s: cannot read the folder: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    tern_status st = TERN_OK;
    struct dirent *e;
    while (st == TERN_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **x = data_grow(names, &cap, sizeof *x, 64);
            if (!x) {
                st = tern_err(TERN_ENOMEM, "out of memory");
                break;
            }
            names = x;
        }
        if (!(names[n] = strdup(e->d_name))) st = tern_err(TERN_ENOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n && st == TERN_OK; i++) {
        char *path = tern_path_join(dir, names[i]);
        struct stat sb, lsb;
        if (!path) st = tern_err(TERN_ENOMEM, "out of memory");
        else if (stat(path, &sb) != 0 || lstat(path, &lsb) != 0) st = tern_err(TERN_EIO, "%s: cannot read: %s", path, strerror(errno));
        else if (S_ISDIR(sb.st_mode) && !S_ISLNK(lsb.st_mode)) st = walk(l, path, source);
        else if (S_ISREG(sb.st_mode)) st = push_file(l, path, source, (uint64_t)sb.st_size);
        free(path);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

void data_files_free(data_file *f, size_t n) {
    for (size_t i = 0; i < n; i++) free(f[i].path);
    free(f);
}

tern_status data_list_inputs(const char *const *inputs, size_t n, data_file **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    file_list l = {0};
    int seen_stdin = 0;
    tern_status st = TERN_OK;
    for (size_t i = 0; i < n && st == TERN_OK; i++) {
        const char *in = inputs[i];
        struct stat sb;
        if (!strcmp(in, "-")) {
            if (seen_stdin++) st = tern_err(TERN_EINVAL, "standard input (-) is given twice");
            else st = push_file(&l, "-", (uint32_t)i, 0);
        } else if (stat(in, &sb) != 0) {
            st = tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: %s", in,
                          errno == ENOENT ? "no such file or folder" : strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            size_t before = l.n;
            st = walk(&l, in, (uint32_t)i);
            if (st == TERN_OK && l.n == before) st = tern_err(TERN_ENOTFOUND, "%s: a folder with no files in it (names that start with '.' are skipped)", in);
        } else if (S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)) {
            st = push_file(&l, in, (uint32_t)i, S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0);
        } else {
            st = tern_err(TERN_EINVAL, "%s: not a file or a folder", in);
        }
    }
    if (st != TERN_OK) {
        data_files_free(l.v, l.n);
        return st;
    }
    *out = l.v;
    *n_out = l.n;
    return TERN_OK;
}
