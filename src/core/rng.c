/* Counter-based random numbers: a draw is a pure function of (seed, stream, counter), so a run
 * resumed at step s draws exactly what an unbroken run draws there, with no generator state to
 * save (docs/DESIGN.md, "Exact resume"). The mixer is SplitMix64's finaliser (Steele et al., 2014). */
#include "tern/core.h"

#include <math.h>

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t tern_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
    uint64_t key = mix64(seed ^ 0x9e3779b97f4a7c15ULL) ^ mix64(stream + 0x632be59bd9b4e019ULL);
    return mix64(key + counter * 0x9e3779b97f4a7c15ULL);
}

float tern_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
    return (float)(tern_rng_u64(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

float tern_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter) {
    /* Box-Muller on two 53-bit uniforms; u1 in (0, 1] so log is finite. */
    double u1 = ((double)(tern_rng_u64(seed, stream, 2 * counter) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(tern_rng_u64(seed, stream, 2 * counter + 1) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t tern_rng_below(uint64_t seed, uint64_t stream, uint64_t *counter, uint64_t n) {
    TERN_ASSERT(n > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    for (;;) {
        uint64_t r = tern_rng_u64(seed, stream, (*counter)++);
        if (r < limit) return r % n;
    }
}

uint64_t tern_rng_stream(const char *use, uint64_t a, uint64_t b) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the name, then mixed with a and b */
    for (const char *p = use; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return mix64(h ^ mix64(a + 0x1234567ULL) ^ mix64(b * 0x9e3779b97f4a7c15ULL + 7));
}
