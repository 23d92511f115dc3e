/* A model's tensor table to and from safetensors, for checkpoints and the Hugging Face export:
 * the names are the table's (with the family's prefix where the format wants it), the bytes come
 * from and go to the backend through the model, a tensor at a time. */
#include "tern/ckpt.h"

#include <stdlib.h>
#include <string.h>

static tern_status fetch_params(void *ctx, size_t tag, size_t off, void *dst, size_t n) {
    return tern_model_read(ctx, TERN_PARAMS, tag + off / sizeof(float), n / sizeof(float), dst);
}

tern_status tern_params_to_st(tern_model *m, const char *prefix, tern_st_writer *w) {
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    tern_status st = tern_st_add_meta(w, "format", "pt");
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        st = tern_st_add_fetch(w, name, TERN_DT_F32, t[i].ndim, t[i].shape, fetch_params, m, t[i].offset);
    }
    return st;
}

/* name, or prefix + name */
static const tern_st_entry *find_either(const tern_safetensors *sf, const char *prefix, const char *name) {
    const tern_st_entry *e = tern_st_find(sf, name);
    if (e || !*prefix) return e;
    char pre[160];
    snprintf(pre, sizeof pre, "%s%s", prefix, name);
    return tern_st_find(sf, pre);
}

tern_status tern_params_from_st(tern_model *m, const tern_safetensors *sf, const char *prefix, tern_params_extra extra, void *ctx) {
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    const char *label = tern_st_label(sf);
    size_t most = 0;
    for (size_t i = 0; i < n; i++) most = t[i].numel > most ? t[i].numel : most;
    float *buf = malloc((most ? most : 1) * sizeof(float));
    if (!buf) return tern_err(TERN_ENOMEM, "out of memory reading %s", label);
    tern_status st = TERN_OK;
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        const tern_st_entry *e = find_either(sf, prefix, t[i].name);
        if (!e) st = tern_err(TERN_ENOTFOUND, "%s: missing tensor '%s%s'", label, prefix, t[i].name);
        if (st == TERN_OK) st = tern_st_read_f32(sf, e->name, buf, t[i].ndim, t[i].shape);
        if (st == TERN_OK) st = tern_model_write(m, TERN_PARAMS, t[i].offset, t[i].numel, buf);
    }
    free(buf);
    /* everything else is refused unless the caller knows it, so a file of another architecture or
     * shape is not half-loaded */
    size_t np = strlen(prefix);
    for (size_t i = 0; st == TERN_OK && i < tern_st_count(sf); i++) {
        const tern_st_entry *e = tern_st_entry_at(sf, i);
        const char *nm = np && !strncmp(e->name, prefix, np) ? e->name + np : e->name;
        if (tern_model_find(m, nm)) continue;
        st = extra ? extra(m, sf, e, ctx)
                   : tern_err(TERN_EFORMAT, "%s: unexpected tensor '%s' for a %s of this shape", label, e->name, tern_model_cfg(m)->arch);
    }
    return st;
}
