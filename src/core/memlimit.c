/* How much memory this process may use, so that a run too large for the machine is refused
 * before it allocates anything, instead of being killed by the kernel's OOM killer half an hour
 * in. Containers and batch schedulers cap memory with cgroups, which physical memory alone does
 * not show; an rlimit (ulimit -v) caps it too. */
#include "tern/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void take(uint64_t *best, char *what, size_t what_n, uint64_t v, const char *name) {
    if (v && v < *best) {
        *best = v;
        if (what) snprintf(what, what_n, "%s", name);
    }
}

/* A cgroup limit file's value: a byte count, or "max" / a huge number for none (0). */
static uint64_t read_limit(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[64] = "";
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!ok || !strncmp(buf, "max", 3)) return 0;
    char *end;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || v >= (1ull << 62)) return 0; /* v1 writes ~2^63 for no limit */
    return (uint64_t)v;
}

/* Walks the cgroup path from the process's own cgroup up to the root, taking every limit. */
static void cgroup_limits(uint64_t *best, char *what, size_t what_n) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        /* "0::/path" (v2), or "N:memory:/path" / "N:cpu,memory:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *rel = c2 + 1;
        int v2 = !*ctrl, v1 = strstr(ctrl, "memory") != NULL;
        if (!v2 && !v1) continue;
        char cg[1100];
        snprintf(cg, sizeof cg, "%s", rel);
        for (;;) {
            char path[1300], name[1400];
            snprintf(path, sizeof path, v2 ? "/sys/fs/cgroup%s/memory.max" : "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                     strcmp(cg, "/") ? cg : "");
            snprintf(name, sizeof name, "the cgroup limit (%s)", path);
            take(best, what, what_n, read_limit(path), name);
            char *slash = strrchr(cg, '/');
            if (!slash || slash == cg) {
                if (!strcmp(cg, "/") || !*cg) break;
                snprintf(cg, sizeof cg, "/");
                continue;
            }
            *slash = 0;
        }
    }
    fclose(f);
}

uint64_t tern_mem_limit(char *what, size_t what_n) {
    uint64_t best = UINT64_MAX;
    if (what && what_n) what[0] = 0;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && psize > 0) take(&best, what, what_n, (uint64_t)pages * (uint64_t)psize, "physical memory");
    cgroup_limits(&best, what, what_n);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        take(&best, what, what_n, (uint64_t)rl.rlim_cur, "the address-space limit (ulimit -v)");
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        take(&best, what, what_n, (uint64_t)rl.rlim_cur, "the data-segment limit (ulimit -d)");
    return best == UINT64_MAX ? 0 : best;
}
