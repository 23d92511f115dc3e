/* Backends: where a model's memory lives and what computes on it (docs/DESIGN.md, "Backends").
 * A backend owns buffers (allocate, upload, download, copy, zero, synchronise) and a table of
 * kernels over them; a model is built on one, and nothing outside the model and the backend
 * touches that memory: callers copy tensors in and out by name (tern/model.h). The CPU backends
 * share host memory and differ in their kernels: ref (plain C, the numerical oracle), cpu (oneDNN
 * matrix products), avx2 and avx512 (vectorised row and pointwise kernels on top). A CUDA backend
 * keeps device memory behind the same interface. Errors of asynchronous kernels surface at
 * tern_backend_sync, naming the kernel. */
#ifndef TERN_BACKEND_H
#define TERN_BACKEND_H
#include "tern/core.h"

typedef struct tern_backend tern_backend;

/* Opens a backend by name: "ref", "cpu", "avx2", "avx512", "cuda" or "cuda:N" (device N), or
 * NULL / "" / "auto" for the default CPU set (TERN_KERN if set, else the fastest this CPU runs).
 * A name this build or machine cannot run fails with a message saying why (TERN_EINVAL). */
tern_status tern_backend_open(tern_backend **out, const char *name);
void tern_backend_free(tern_backend *be);
/* The process's default CPU backend (opened on first use, never freed): what a model built
 * without a backend runs on. */
tern_backend *tern_backend_default(void);
/* "ref", "cpu", "avx2", "avx512", "cuda:0". */
const char *tern_backend_name(const tern_backend *be);
/* Whether the backend's memory is this process's memory (every CPU backend). */
int tern_backend_is_host(const tern_backend *be);
/* Waits for the backend's work and returns the first failure since the last call (TERN_EIO for
 * a device fault, with the kernel's name), clearing it. CPU backends never fail here. */
tern_status tern_backend_sync(tern_backend *be);
/* The arithmetic of matrix products and attention: "fp32" (the default, exact: no reduced-precision
 * tensor-core or bf16 paths) or "bf16" (operands rounded to bf16, products accumulated in fp32;
 * master weights, gradients and optimizer state stay fp32). A backend that cannot do it refuses
 * with TERN_EINVAL and says why. */
tern_status tern_backend_set_precision(tern_backend *be, const char *precision);
const char *tern_backend_precision(const tern_backend *be);
/* How the precision is carried out, for messages, or "" when there is nothing to add: on the CPU
 * at bf16, "AVX512_BF16" or "emulated: operands rounded to bf16, fp32 products" (the same
 * arithmetic up to the order of fp32 additions). */
const char *tern_backend_precision_how(const tern_backend *be);
/* Bytes per parameter the backend keeps beside the model's weights while it runs passes over
 * them, at most (at bf16 with AVX512_BF16: each weight in bf16 in the two layouts its products
 * read, 4); 0 when it keeps none. What a memory budget must count besides the model's own. */
size_t tern_backend_weight_copy_bytes(const tern_backend *be);

/* The names tern_backend_open knows, NULL-terminated; tern_backend_available says whether this
 * build on this machine can open one (and why not, into why, when it cannot). */
extern const char *const tern_backend_names[];
int tern_backend_available(const char *name, char *why, size_t why_n);

/* The backend's matrix-product rate on an M x K by K x N product, repeated for at least
 * min_seconds (and 3 times): *flops_per_s, and how many calls in how many seconds. For the site
 * planner, which needs this machine's rate. */
tern_status tern_backend_sgemm_rate(tern_backend *be, size_t M, size_t N, size_t K, double min_seconds, double *flops_per_s,
                                    int *calls, double *seconds);

/* Threads for CPU kernels and matrix products (0 = all cores). */
void tern_set_threads(int n);
#endif
