/* A plaintext audit: looks for a marker's bytes in every file under a folder, so tests (and
 * people) can show that a sealed run left no plaintext on disk, temporary files included. It
 * reads files as raw bytes and knows no formats: a marker stored compressed or re-encoded would
 * not be found, so tests should choose a marker that the code under test copies verbatim. */
#include "secure_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static tern_status scan(const char *dir, const void *marker, size_t n, char **found, int depth) {
    if (depth > 64) return tern_err(TERN_EINVAL, "%s: folders nested more than 64 deep", dir);
    struct dirent **names;
    int k = scandir(dir, &names, NULL, alphasort);
    if (k < 0) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot list folder: %s", dir, strerror(errno));
    tern_status st = TERN_OK;
    for (int i = 0; i < k; i++) {
        const char *nm = names[i]->d_name;
        if (st != TERN_OK || *found || !strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        char *p = tern_path_join(dir, nm);
        if (!p) {
            st = tern_err(TERN_ENOMEM, "out of memory");
            continue;
        }
        struct stat sb;
        if (lstat(p, &sb) != 0) {
            /* a file removed while we looked (a temporary one, say) holds nothing now */
            if (errno != ENOENT) st = tern_err(TERN_EIO, "%s: cannot stat: %s", p, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            st = scan(p, marker, n, found, depth + 1);
        } else if (S_ISREG(sb.st_mode) && (size_t)sb.st_size >= n) {
            tern_map m;
            st = tern_map_file(&m, p);
            if (st == TERN_ENOTFOUND) st = TERN_OK;
            else if (st == TERN_OK) {
                if (m.size >= n && memmem(m.data, m.size, marker, n)) {
                    *found = p;
                    p = NULL;
                }
                tern_unmap(&m);
            }
        }
        free(p);
    }
    for (int i = 0; i < k; i++) free(names[i]);
    free(names);
    return st;
}

tern_status tern_secure_scan_dir(const char *dir, const void *marker, size_t n, char **found) {
    *found = NULL;
    if (n == 0) return tern_err(TERN_EINVAL, "the marker to scan for is empty");
    tern_status st = scan(dir, marker, n, found, 0);
    if (st != TERN_OK) {
        free(*found);
        *found = NULL;
    }
    return st;
}
