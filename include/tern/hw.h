/* tern hw: what hardware a host has (CPU features, GPUs through NVML, tern's table of known
 * accelerators) and what class it falls in under ECCN 3A090: TPP and performance density.
 * It reports figures; it is not legal advice and decides nothing about licences (tern/policy.h
 * applies the owner's policy). Definitions follow 15 CFR 774 Supp. 1, ECCN 3A090, as revised by
 * 88 FR 73458 (2023-10-25, effective 2023-11-17); docs/COMPLIANCE.md gives every source. */
#ifndef TERN_HW_H
#define TERN_HW_H

#include "tern/core.h"

struct cJSON;

/* ---- precisions and the 3A090 arithmetic ---- */
typedef enum {
    TERN_PREC_FP64,
    TERN_PREC_FP32,
    TERN_PREC_TF32,
    TERN_PREC_BF16,
    TERN_PREC_FP16,
    TERN_PREC_FP8,
    TERN_PREC_INT8,
    TERN_PREC_FP4,
    TERN_PREC_INT4,
    TERN_PREC_COUNT
} tern_prec;
const char *tern_prec_name(tern_prec p); /* "fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4", "int4" */
/* The 'bit length of the operation' used for TPP: the width of the multiply's input operands
 * (TF32 operands travel in 32-bit registers; it never gives the largest TPP in tern's table). */
int tern_prec_bits(tern_prec p);
/* Case-insensitive; returns 0 and sets *p, or -1 for an unknown name. */
int tern_prec_from_name(const char *name, tern_prec *p);

typedef enum {
    TERN_3A090_NOT,         /* "not 3A090": below every 3A090 parameter, or excluded by Note 2 */
    TERN_3A090_B,           /* "3A090.b" */
    TERN_3A090_A,           /* "3A090.a" */
    TERN_3A090_UNDETERMINED /* "undetermined": a needed input (throughput or die area) is unknown */
} tern_3a090;
const char *tern_3a090_name(tern_3a090 c);

/* Thresholds of ECCN 3A090.a and .b as 88 FR 73458 sets them (see docs/COMPLIANCE.md). */
#define TERN_3A090_A1_TPP 4800.0
#define TERN_3A090_A2_TPP 1600.0
#define TERN_3A090_A2_PD 5.92
#define TERN_3A090_B1_TPP 2400.0
#define TERN_3A090_B1_PD 1.6
#define TERN_3A090_B2_TPP 1600.0
#define TERN_3A090_B2_PD 3.2
#define TERN_3A090_RULE "ECCN 3A090.a/.b as revised by 88 FR 73458 (2023-10-25, effective 2023-11-17)"

typedef struct tern_hw_class {
    double tpp;            /* Total Processing Performance; NAN when no throughput figure is known */
    tern_prec tpp_prec;    /* the precision that gives the highest TPP */
    int tpp_declared;      /* the TPP was declared in a site file, not computed here */
    double perf_density;   /* TPP / applicable die area (mm^2); NAN when the area is unknown */
    tern_3a090 cls;
    const char *paragraph; /* "3A090.a.1", "3A090.a.2", "3A090.b.1", "3A090.b.2" or NULL */
    char reason[320];      /* one sentence: which test decided, with the numbers */
} tern_hw_class;

/* TPP = 2 x MacTOPS x bit length = (dense tera-ops per second) x bits, taking the precision that
 * gives the highest value. dense_tops[p] is the peak dense throughput at precision p in tera
 * operations per second (one multiply-accumulate counts as 2), 0 where the device lacks p.
 * Returns NAN when every entry is 0. */
double tern_hw_tpp(const double dense_tops[TERN_PREC_COUNT], tern_prec *best);
/* Classifies one integrated circuit. die_area_mm2 <= 0 means unknown. datacenter: 1 designed or
 * marketed for datacenters, 0 not, -1 unknown (then Note 2's exclusion is not applied). */
void tern_hw_classify(tern_hw_class *out, const double dense_tops[TERN_PREC_COUNT], double die_area_mm2,
                      int datacenter);

/* ---- the table of accelerators tern knows ---- */
typedef struct tern_hw_known {
    const char *name;       /* "H100 SXM", ... (what site files name in "accelerator") */
    const char *vendor;
    int datacenter;         /* 1, 0, or -1 unknown */
    double dense_tops[TERN_PREC_COUNT];
    const char *tops_source; /* source id(s) in docs/COMPLIANCE.md and what they say */
    int tops_estimated;      /* 0: the vendor published these figures; 1: reported or derived */
    double die_area_mm2;     /* 0: not known */
    const char *die_source;
    int die_estimated;
    const char *note;
    const char *nvml_names[6]; /* NVML device names (without "NVIDIA "), a trailing '*' = prefix */
} tern_hw_known;
size_t tern_hw_known_count(void);
const tern_hw_known *tern_hw_known_at(size_t i);
/* By table name, case-insensitively; NULL if absent. */
const tern_hw_known *tern_hw_known_find(const char *name);
/* By the name NVML reports (e.g. "NVIDIA H100 80GB HBM3"); NULL if tern has no figures for it. */
const tern_hw_known *tern_hw_known_match_nvml(const char *nvml_name);
/* {"rule_set": ..., "devices": [...]}: the table with each device's class and sources. */
tern_status tern_hw_known_json(struct cJSON **out);

/* ---- this machine ---- */
enum {
    TERN_CPU_SSE2 = 1u << 0,
    TERN_CPU_AVX = 1u << 1,
    TERN_CPU_FMA = 1u << 2,
    TERN_CPU_AVX2 = 1u << 3,
    TERN_CPU_AVX512F = 1u << 4,
    TERN_CPU_AVX512_BF16 = 1u << 5,
    TERN_CPU_AVX512_VNNI = 1u << 6,
    TERN_CPU_AVX_VNNI = 1u << 7,
    TERN_CPU_AMX_TILE = 1u << 8,
    TERN_CPU_AMX_BF16 = 1u << 9,
    TERN_CPU_AMX_INT8 = 1u << 10,
    TERN_CPU_ASIMD = 1u << 11,
    TERN_CPU_SVE = 1u << 12
};

typedef struct tern_hw_cpu {
    char vendor[32];          /* "GenuineIntel", "AuthenticAMD", "ARM", ... */
    char model[128];          /* the "model name" line */
    int family, model_id;     /* x86 family and model numbers, -1 if not given */
    int cores;                /* physical cores visible to this OS */
    int threads;              /* logical processors visible to this OS */
    unsigned features;        /* TERN_CPU_* bits */
    double nominal_ghz;       /* 0 when unknown */
    char nominal_source[64];  /* where nominal_ghz came from */
} tern_hw_cpu;
/* Parses /proc/cpuinfo text (n bytes, need not be NUL-terminated). `what` names the source in
 * messages. */
tern_status tern_hw_cpu_from_cpuinfo(tern_hw_cpu *out, const char *text, size_t n, const char *what);
/* Peak dense throughput of the visible cores at clock_ghz, from the per-core vector model
 * (multiply-accumulate units x width) that the vendor/family/features select. basis receives
 * one sentence saying which model was used. */
void tern_hw_cpu_peak(const tern_hw_cpu *cpu, double clock_ghz, double dense_tops[TERN_PREC_COUNT], char *basis,
                      size_t nbasis);
/* Times a chain of dependent integer adds (one cycle each) on one core: the clock the core
 * actually runs at. Returns 0 where tern cannot measure it (not x86-64). */
double tern_hw_measure_clock_ghz(void);

typedef enum { TERN_HW_CPU, TERN_HW_GPU } tern_hw_kind;

typedef struct tern_hw_device {
    tern_hw_kind kind;
    char name[128];
    char vendor[64];
    double dense_tops[TERN_PREC_COUNT];
    double die_area_mm2;        /* <= 0 unknown */
    int datacenter;             /* 1, 0, -1 unknown */
    double memory_bytes;        /* device memory for GPUs; host memory is on tern_hw_host */
    tern_hw_class cls;
    const tern_hw_known *known; /* the table entry the figures came from, or NULL */
    char id[96];                /* GPU UUID from NVML, "" for CPUs */
    /* CPUs only */
    tern_hw_cpu cpu;
    double clock_ghz;           /* the clock the peak figures use */
    char clock_source[96];      /* "measured: ..." or "nominal: ..." */
    char basis[256];            /* how the peak was computed */
} tern_hw_device;

#define TERN_HW_MAX_DEVICES 17
typedef struct tern_hw_host {
    char hostname[256];
    double memory_bytes;        /* MemTotal */
    char nvml[160];             /* what happened when tern looked for NVML */
    int ndev;
    tern_hw_device dev[TERN_HW_MAX_DEVICES];
} tern_hw_host;
/* Detects this machine: the CPU (from /proc/cpuinfo, clock measured), memory, and Nvidia GPUs
 * through NVML loaded with dlopen (TERN_NVML_LIB overrides the library name; absent is normal). */
tern_status tern_hw_probe(tern_hw_host *out);
/* {"host":..., "memory_bytes":..., "nvml":..., "rule_set":..., "devices":[...]} */
tern_status tern_hw_host_json(const tern_hw_host *h, struct cJSON **out);
/* One device object: name, kind, vendor, peak_dense_tops, tpp, tpp_precision,
 * performance_density (null if unknown), eccn_3a090, eccn_paragraph, eccn_reason, sources, ... */
tern_status tern_hw_device_json(const tern_hw_device *d, struct cJSON **out);
/* This host's hardware summary: the object `tern hw --json` prints, whose "devices" array holds
 * one object per device. For the run ledger and the training command to embed; caller frees with
 * cJSON_Delete. */
tern_status tern_hw_summary_json(struct cJSON **out);

/* ---- helpers for tern/policy.h, which reads the same figures from site files ---- */
/* {"fp64": x, ...}: the non-zero entries. */
struct cJSON *tern_hw_tops_json(const double dense_tops[TERN_PREC_COUNT]);
/* Adds tpp, tpp_precision, tpp_bit_length, die_area_mm2, performance_density, eccn_3a090,
 * eccn_paragraph and eccn_reason to obj. Returns 0 on out of memory. */
int tern_hw_class_add_json(struct cJSON *obj, const tern_hw_class *c, double die_area_mm2);
/* The 3A090 tests on a TPP already known (tern_hw_classify computes it from per-precision figures
 * first; a site file may declare it). */
void tern_hw_classify_tpp(tern_hw_class *out, double tpp, tern_prec prec, double die_area_mm2, int datacenter);
#endif
