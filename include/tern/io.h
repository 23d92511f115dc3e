/* Moving models in and out of tern: a Hugging Face GPT-2 folder (config.json +
 * model.safetensors, with GPT-2's tokenizer files) and checkpoint folders. Follows the layout
 * that transformers' GPT2LMHeadModel.save_pretrained writes and from_pretrained reads. */
#ifndef TERN_IO_H
#define TERN_IO_H
#include "tern/ckpt.h"
#include "tern/model.h"
#include "tern/optim.h"
#include "tern/secure.h"

/* Writes the model's parameters as safetensors under Hugging Face names with the given prefix
 * ("transformer." for a GPT2LMHeadModel folder), float32, metadata format=pt. The tied head
 * is not written (transformers ties lm_head to wte). Returns the bytes in memory when out/n are
 * given instead of a path (for sealing). */
tern_status tern_io_model_to_st(tern_gpt2 *m, const char *prefix, tern_st_writer **out);

/* Reads a Hugging Face GPT-2 config.json into cfg (n_layer, n_head, n_embd, n_positions,
 * vocab_size; checks layer_norm_epsilon 1e-5 and activation gelu_new). */
tern_status tern_io_read_hf_config(const char *path, tern_gpt2_config *cfg);
/* Loads parameters from a safetensors file with Hugging Face GPT-2 names, with or without the
 * "transformer." prefix; ignores attn.bias / attn.masked_bias buffers; accepts lm_head.weight
 * when it equals wte.weight (tied), refuses an untied head. Every parameter must be present
 * with the model's shape. */
tern_status tern_io_load_st_params(tern_gpt2 *m, const tern_safetensors *st);
/* Opens a Hugging Face GPT-2 folder: builds the model from its config.json and loads its
 * model.safetensors. */
tern_status tern_io_load_hf(const char *dir, tern_gpt2 **out);
/* Writes a Hugging Face GPT-2 folder: config.json, model.safetensors, generation_config.json,
 * and the tokenizer's vocab.json + merges.txt copied from tokenizer_dir (which may hold either
 * name pair). eos_id is <|endoftext|>'s id. */
tern_status tern_io_export_hf(tern_gpt2 *m, const char *tokenizer_dir, int eos_id, const char *outdir);

/* Opens a model from a run folder (its latest checkpoint, or step `step` when step > 0), or
 * from a Hugging Face GPT-2 folder. *tokdir (malloc'd, may be NULL when the caller does not
 * want it) receives the folder holding its tokenizer files. */
tern_status tern_io_open_model(const char *path, long long step, tern_gpt2 **out, char **tokdir);
/* The same for sealed runs: a run folder's checkpoint is read with key (sealed to the run id in
 * its config.json); without a key a sealed checkpoint is refused, naming the file. key may be
 * NULL. Its tokenizer folder is then read with tern_tok_load_key. */
tern_status tern_io_open_model_key(const char *path, long long step, tern_gpt2 **out, char **tokdir, const tern_key *key);

/* Copies a tokenizer folder's two files (vocab.json + merges.txt, or GPT-2's encoder.json +
 * vocab.bpe) into dstdir under Hugging Face's names. Contents are unchanged, so the tokenizer's
 * hash (tern_tok_hash) is too. */
tern_status tern_io_copy_tokenizer(const char *srcdir, const char *dstdir);
/* The same for sealed runs: a sealed source file is decrypted in memory with src_key; the copies
 * are sealed with dst_key (identities "tokenizer vocab.json", "tokenizer merges.txt"), or
 * written plainly when dst_key is NULL (export's folder). Either key may be NULL. */
tern_status tern_io_copy_tokenizer_key(const char *srcdir, const char *dstdir, const tern_key *src_key, const tern_key *dst_key);

/* ---- checkpoints: RUNDIR/ckpt/step-NNNNNN/{model,optimizer}.safetensors + state.json ---- */
/* Writes a checkpoint folder atomically (written aside, fsynced, renamed), points
 * RUNDIR/ckpt/latest at it, and removes all but the newest `keep` checkpoints. state_json is
 * the run state (step, cursor, configuration). */
tern_status tern_ckpt_save(const char *rundir, uint64_t step, tern_gpt2 *m, const tern_adamw *opt, const char *state_json,
                           int keep);
/* Seals every checkpoint file this process writes, and requires every one it reads to be
 * sealed, with key, under the identity "run <run_id> ckpt step <N> <file name>", so that a
 * checkpoint of another run (or step, or file) is refused. key NULL (the default) returns to
 * plain files. key is borrowed and must outlive its use; run_id is copied. `latest` stays plain
 * (it names a folder and holds nothing of the data). */
tern_status tern_ckpt_set_seal(const tern_key *key, const char *run_id);
/* The folder `latest` points to (malloc'd), or TERN_ENOTFOUND when the run has no checkpoint. */
tern_status tern_ckpt_latest(const char *rundir, char **ckptdir);
/* The folder of a given step (malloc'd), checked to exist. */
tern_status tern_ckpt_at_step(const char *rundir, uint64_t step, char **ckptdir);
tern_status tern_ckpt_load_model(const char *ckptdir, tern_gpt2 *m);
tern_status tern_ckpt_load_optimizer(const char *ckptdir, const tern_gpt2 *m, tern_adamw *opt);
/* state.json as text (malloc'd). */
tern_status tern_ckpt_read_state(const char *ckptdir, char **json);
#endif
