/* Folder locks: one process at a time writes a run folder. flock(2) rather than a pid file,
 * because the kernel drops the lock when its holder dies (even by SIGKILL), so a crashed run
 * never leaves its folder locked; the pid and host written into the lock file are only for the
 * message a refused process prints. */
#include "tern/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The holder's "pid host" line; it may still be empty for a moment after the holder took the
 * lock, so read a few times. */
static void read_holder(int fd, char *out, size_t n) {
    out[0] = 0;
    for (int tries = 0; tries < 20; tries++) {
        ssize_t k = pread(fd, out, n - 1, 0);
        if (k > 0) {
            out[k] = 0;
            char *nl = strchr(out, '\n');
            if (nl) {
                *nl = 0;
                return;
            }
        }
        usleep(5000);
    }
    out[0] = 0;
}

tern_status tern_dir_lock_take(tern_dir_lock *l, const char *dir, const char *what) {
    l->fd = -1;
    char *path = tern_path_join(dir, "lock");
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    /* O_CREAT changes nothing when the file exists, which it does whenever another process holds
     * the lock: a refused process writes nothing. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        tern_status st = tern_err(TERN_EIO, "%s: cannot open the lock file: %s", path, strerror(errno));
        free(path);
        return st;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        tern_status st;
        if (e == EWOULDBLOCK) {
            char holder[256];
            read_holder(fd, holder, sizeof holder);
            char pid[32] = "", host[200] = "";
            if (sscanf(holder, "%31s %199s", pid, host) < 1) snprintf(pid, sizeof pid, "unknown");
            st = tern_err(TERN_EBUSY, "%s is in use by %s (pid %s%s%s); wait for it to finish, or stop it (kill -INT %s)", dir,
                          what, pid, host[0] ? " on " : "", host, pid);
        } else {
            st = tern_err(TERN_EIO, "%s: cannot lock: %s", path, strerror(e));
        }
        close(fd);
        free(path);
        return st;
    }
    char host[200] = "", line[256];
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown-host");
    int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
        tern_status st = tern_err(TERN_EIO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        free(path);
        return st;
    }
    free(path);
    l->fd = fd;
    return TERN_OK;
}

void tern_dir_lock_release(tern_dir_lock *l) {
    if (l->fd >= 0) close(l->fd); /* closing the only descriptor drops the flock */
    l->fd = -1;
}
