/* Text from a model: a key-value cache fed <|endoftext|> and the prompt, then tokens drawn one at
 * a time from softmax(logits / temperature), restricted to the top k and to the nucleus of
 * probability p (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration"), until
 * <|endoftext|> or the token budget. Draws come from the counter RNG keyed by (seed, sample
 * index, token), so a seed gives one text and each index another. Used by `tern sample` and by
 * training's --sample-every. */
#include "tern/eval.h"

#include "tern/model.h"
#include "tern/tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The smallest logit a token may have to be drawn: the k-th largest (k 0: all), raised further so
 * that the tokens kept are the fewest, by descending probability, whose probabilities at the
 * temperature add up to at least top_p. scratch holds V floats. */
static float threshold(const float *logits, size_t V, double temperature, size_t topk, double top_p, float best, float *scratch) {
    float thresh = -INFINITY;
    if (!(topk > 0 && topk < V) && !(top_p < 1)) return thresh;
    memcpy(scratch, logits, V * sizeof(float));
    qsort(scratch, V, sizeof(float), cmp_desc);
    size_t k = topk > 0 && topk < V ? topk : V;
    if (topk > 0 && topk < V) thresh = scratch[topk - 1];
    if (top_p < 1) {
        double sum = 0;
        for (size_t i = 0; i < k; i++) sum += exp((scratch[i] - best) / temperature);
        double acc = 0;
        for (size_t i = 0; i < k; i++) {
            acc += exp((scratch[i] - best) / temperature);
            if (acc >= top_p * sum) {
                thresh = scratch[i];
                break;
            }
        }
    }
    return thresh;
}

/* A token from logits: greedy at temperature 0, else a draw with uniform u in [0, 1) from the
 * tokens at or above the threshold. */
static int32_t pick(const float *logits, size_t V, const tern_sample_opts *so, double u, float *scratch) {
    size_t best = 0;
    for (size_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    double temperature = so->temperature;
    if (temperature <= 0) return (int32_t)best;
    float thresh = threshold(logits, V, temperature, so->top_k, so->top_p, logits[best], scratch);
    double sum = 0;
    for (size_t i = 0; i < V; i++)
        if (logits[i] >= thresh) sum += exp((logits[i] - logits[best]) / temperature);
    double target = u * sum, acc = 0;
    size_t last = best;
    for (size_t i = 0; i < V; i++) {
        if (logits[i] < thresh) continue;
        acc += exp((logits[i] - logits[best]) / temperature);
        last = i;
        if (acc > target) return (int32_t)i;
    }
    return (int32_t)last;
}

tern_status tern_sample_text(tern_model *m, tern_model_cache *cache, const tern_tok *tok, const char *prompt,
                             const tern_sample_opts *so, tern_sample_emit emit, void *ctx) {
    const tern_model_config *c = tern_model_cfg(m);
    size_t V = (size_t)c->vocab_size, P = (size_t)c->n_ctx;
    if (tern_tok_vocab_size(tok) != V)
        return tern_err(TERN_EINVAL, "the tokenizer has %zu tokens but the model %zu", tern_tok_vocab_size(tok), V);
    if (!(so->top_p > 0 && so->top_p <= 1)) return tern_err(TERN_EINVAL, "top_p must be in (0, 1], got %g", so->top_p);
    tern_ids ids = {0};
    int32_t eot = tern_tok_eot(tok);
    float *scratch = malloc(V * sizeof(float));
    tern_status st = scratch ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    /* generation starts after <|endoftext|>, as every training document does */
    if (st == TERN_OK) st = tern_ids_push(&ids, &eot, 1);
    if (st == TERN_OK && prompt) st = tern_tok_encode(tok, prompt, strlen(prompt), &ids);
    const float *logits = NULL;
    tern_model_cache_reset(cache);
    size_t start = ids.n > P ? ids.n - P : 0; /* the prompt's last n_ctx tokens */
    for (size_t i = start; st == TERN_OK && i < ids.n; i++) st = tern_model_cache_step(m, cache, ids.p[i], &logits);
    uint64_t stream = tern_rng_stream("sample", so->index, 0);
    for (size_t t = 0; st == TERN_OK && t < so->max_tokens; t++) {
        int32_t next = pick(logits, V, so, tern_rng_uniform(so->seed, stream, (uint64_t)t), scratch);
        if (next == eot) break;
        size_t len;
        const uint8_t *bytes = tern_tok_token(tok, next, &len);
        if ((st = emit(ctx, bytes, len)) != TERN_OK || (st = tern_ids_push(&ids, &next, 1)) != TERN_OK) break;
        if (tern_model_cache_len(cache) == P) {
            /* the context is full: keep its last half and refill the cache with it */
            tern_model_cache_reset(cache);
            for (size_t i = ids.n - P / 2 - 1; st == TERN_OK && i < ids.n - 1; i++) st = tern_model_cache_step(m, cache, ids.p[i], &logits);
        }
        if (st == TERN_OK) st = tern_model_cache_step(m, cache, next, &logits);
    }
    free(scratch);
    tern_ids_free(&ids);
    return st;
}
