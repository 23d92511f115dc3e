/* `tern hw`: this machine's hardware with its ECCN 3A090 figures, or (--known) the table of
 * accelerators tern knows. Only prints; the probe and the arithmetic are in hw/probe.c, and
 * docs/COMPLIANCE.md says what the figures mean. Not legal advice. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: tern hw [--json] [--known]\n"
    "\n"
    "Detects this machine's CPU, memory and (through NVML, when present) Nvidia GPUs, and prints each\n"
    "device's peak dense throughput, its Total Processing Performance (TPP), performance density and\n"
    "the class these give under ECCN 3A090 (" TERN_3A090_RULE ").\n"
    "\n"
    "  --known   the table of accelerators tern knows instead, with each figure's source\n"
    "  --json    machine-readable output: {\"devices\": [{\"name\", \"kind\", \"tpp\",\n"
    "            \"performance_density\", \"eccn_3a090\", \"sources\", ...}]}\n"
    "\n"
    "tern reports figures and applies the owner's policy; it is not legal advice (docs/COMPLIANCE.md).\n";

static void print_json(cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) {
        fprintf(stderr, "tern hw: out of memory printing JSON\n");
        exit(1);
    }
    printf("%s\n", s);
    free(s);
}

static void fmt_num(char *out, size_t n, double v, int decimals) {
    if (isnan(v)) {
        snprintf(out, n, "-");
        return;
    }
    char raw[64];
    snprintf(raw, sizeof raw, "%.*f", decimals, v);
    /* thousands separators on the integer part */
    char *dot = strchr(raw, '.');
    size_t ilen = dot ? (size_t)(dot - raw) : strlen(raw), k = 0;
    char buf[96];
    for (size_t i = 0; i < ilen; i++) {
        if (i && raw[0] != '-' && (ilen - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
    snprintf(out, n, "%s%s", buf, dot ? dot : "");
}

static void tops_list(char *out, size_t n, const double *tops) {
    out[0] = 0;
    for (int p = 0; p < TERN_PREC_COUNT; p++) {
        if (!(tops[p] > 0)) continue;
        char item[48];
        snprintf(item, sizeof item, "%s%s %g", out[0] ? ", " : "", tern_prec_name((tern_prec)p), tops[p]);
        strncat(out, item, n - strlen(out) - 1);
    }
    if (!out[0]) snprintf(out, n, "none known");
}

static void print_class_line(const tern_hw_class *c, double area) {
    char tpp[128], pd[128], ar[128];
    fmt_num(tpp, sizeof tpp, c->tpp, 1);
    fmt_num(pd, sizeof pd, c->perf_density, 2);
    fmt_num(ar, sizeof ar, area > 0 ? area : NAN, 1);
    printf("  TPP %s%s%s%s, die area %s mm^2, performance density %s\n", tpp, isnan(c->tpp) ? "" : " (",
           isnan(c->tpp) ? "" : tern_prec_name(c->tpp_prec), isnan(c->tpp) ? "" : ")", ar, pd);
    printf("  class: %s%s%s%s\n", tern_3a090_name(c->cls), c->paragraph ? " (" : "", c->paragraph ? c->paragraph : "",
           c->paragraph ? ")" : "");
    printf("  why:   %s\n", c->reason);
}

/* The kernel set tern's CPU backend runs here and how it does bf16's matrix products. */
static void print_kernels(void) {
    tern_backend *be;
    if (tern_backend_open(&be, NULL) != TERN_OK) return;
    if (tern_backend_set_precision(be, "bf16") == TERN_OK)
        printf("  tern kernels: %s (TERN_KERN=ref|cpu|avx2|avx512 forces a set); --precision bf16: %s\n", tern_backend_name(be),
               tern_backend_precision_how(be));
    tern_backend_free(be);
}

static int show_host(int json) {
    tern_hw_host *h = malloc(sizeof *h);
    if (!h) {
        fprintf(stderr, "tern hw: out of memory\n");
        return 1;
    }
    tern_status st = tern_hw_probe(h);
    if (st != TERN_OK) {
        free(h);
        cli_fail("hw", st);
    }
    if (json) {
        cJSON *j;
        st = tern_hw_host_json(h, &j);
        free(h);
        if (st != TERN_OK) cli_fail("hw", st);
        print_json(j);
        cJSON_Delete(j);
        return 0;
    }
    char mem[128];
    fmt_num(mem, sizeof mem, h->memory_bytes / (1024.0 * 1024 * 1024), 1);
    printf("host %s, memory %s GiB\nNVML: %s\nrule set: %s\n", h->hostname, mem, h->nvml, TERN_3A090_RULE);
    for (int i = 0; i < h->ndev; i++) {
        const tern_hw_device *d = &h->dev[i];
        char tops[256];
        tops_list(tops, sizeof tops, d->dense_tops);
        printf("\n%s %d: %s (%s)\n", d->kind == TERN_HW_CPU ? "cpu" : "gpu", i, d->name, d->vendor);
        if (d->kind == TERN_HW_CPU) {
            printf("  %d cores, %d threads (visible to this OS); clock %.3f GHz, %s\n", d->cpu.cores, d->cpu.threads,
                   d->clock_ghz, d->clock_source[0] ? d->clock_source : "unknown");
            printf("  simd:");
            static const char *const fn[] = {"sse2",     "avx",      "fma",      "avx2",  "avx512f",
                                             "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile",
                                             "amx_bf16", "amx_int8", "asimd",    "sve"};
            for (int b = 0; b < 13; b++)
                if (d->cpu.features & (1u << b)) printf(" %s", fn[b]);
            printf("\n  peak basis: %s\n", d->basis);
            print_kernels();
        } else {
            char gm[128];
            fmt_num(gm, sizeof gm, d->memory_bytes / (1024.0 * 1024 * 1024), 1);
            printf("  memory %s GiB; figures from tern's table: %s\n", gm, d->known ? d->known->name : "none");
        }
        printf("  peak dense TFLOPS/TOPS: %s\n", tops);
        print_class_line(&d->cls, d->die_area_mm2);
    }
    printf("\ntern reports figures and applies the owner's policy; it is not legal advice (docs/COMPLIANCE.md).\n");
    free(h);
    return 0;
}

static int show_known(int json) {
    if (json) {
        cJSON *j;
        tern_status st = tern_hw_known_json(&j);
        if (st != TERN_OK) cli_fail("hw", st);
        print_json(j);
        cJSON_Delete(j);
        return 0;
    }
    printf("rule set: %s\n", TERN_3A090_RULE);
    printf("%-12s %-7s %-3s %10s %-5s %9s %6s %-10s %-10s %s\n", "accelerator", "vendor", "dc", "TPP", "prec", "die mm^2",
           "PD", "3A090", "paragraph", "figures");
    for (size_t i = 0; i < tern_hw_known_count(); i++) {
        const tern_hw_known *k = tern_hw_known_at(i);
        tern_hw_class c;
        tern_hw_classify(&c, k->dense_tops, k->die_area_mm2, k->datacenter);
        char tpp[128], pd[128], ar[128];
        fmt_num(tpp, sizeof tpp, c.tpp, 1);
        fmt_num(pd, sizeof pd, c.perf_density, 2);
        fmt_num(ar, sizeof ar, k->die_area_mm2 > 0 ? k->die_area_mm2 : NAN, 1);
        printf("%-12s %-7s %-3s %10s %-5s %9s %6s %-10s %-10s throughput %s, area %s\n", k->name, k->vendor,
               k->datacenter ? "yes" : "no", tpp, tern_prec_name(c.tpp_prec), ar, pd, tern_3a090_name(c.cls),
               c.paragraph ? c.paragraph : "-", k->tops_estimated ? "estimated" : "published",
               k->die_area_mm2 <= 0 ? "unknown" : k->die_estimated ? "estimated" : "published");
    }
    printf("\ndc: designed or marketed for datacenters. TPP = dense TOPS x bit length, the highest over precisions;\n"
           "PD = TPP / logic die area. Every figure's source: `tern hw --known --json` and docs/COMPLIANCE.md.\n"
           "tern reports figures and applies the owner's policy; it is not legal advice.\n");
    return 0;
}

int cli_hw(int argc, char **argv) {
    int json = 0, known = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--json"))
            json = 1;
        else if (cli_flag(argv, i, "--known"))
            known = 1;
        else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else
            cli_usage("hw", "unknown option '%s' (see tern hw --help)", argv[i]);
    }
    return known ? show_known(json) : show_host(json);
}
