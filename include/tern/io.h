/* Moving models in and out of tern: Hugging Face folders (config.json + model.safetensors or
 * sharded model-*.safetensors with model.safetensors.index.json, and the tokenizer's files) of
 * GPT2LMHeadModel, LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM, and run folders.
 * Follows the layout transformers' save_pretrained writes and from_pretrained reads. */
#ifndef TERN_IO_H
#define TERN_IO_H
#include "tern/ckpt.h"
#include "tern/model.h"
#include "tern/secure.h"

/* Reads a Hugging Face config.json into cfg: model_type gpt2 (n_layer, n_head, n_embd,
 * n_positions, vocab_size; layer_norm_epsilon, gelu_new, a 4x MLP), or llama, mistral and qwen2
 * (hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
 * intermediate_size, max_position_embeddings, vocab_size, rms_norm_eps, tie_word_embeddings,
 * attention_bias, the rope base and scaling in transformers 4's top-level rope_theta and
 * rope_scaling or transformers 5's rope_parameters, and Mistral's sliding_window). What tern
 * cannot compute exactly is refused by name: another model_type (e.g. a mixture of experts),
 * another activation, an MLP or output-projection bias, a rope scaling other than llama3, a
 * sliding window (Mistral's; tern_model_reserve refuses sequences longer than it). */
tern_status tern_io_read_hf_config(const char *path, tern_model_config *cfg);
/* Opens a Hugging Face folder: builds the model from its config.json on backend be (NULL: the
 * default) and loads its weights. GPT-2 names with or without "transformer."; the causal-mask
 * buffers of older files and rotary inv_freq buffers ignored; a head equal to the embedding
 * accepted for a tied model. */
tern_status tern_io_load_hf(const char *dir, tern_model **out, tern_backend *be);
/* The weights half of tern_io_load_hf, on files already open (sf[0..n), e.g. a sharded folder's):
 * each of the model's tensors from whichever file holds it, with the leniencies above. */
tern_status tern_io_load_hf_weights(tern_model *m, tern_safetensors *const *sf, size_t n);
/* Writes a Hugging Face folder atomically (written aside, then renamed into place): config.json
 * (GPT2LMHeadModel, LlamaForCausalLM, or Qwen2ForCausalLM when q, k and v have biases, with the
 * rope base in the top-level form both transformers 4 and 5 read), generation_config.json,
 * model.safetensors, and the tokenizer's vocab.json + merges.txt copied from tokenizer_dir (which
 * may hold either GPT-2 name pair; sealed ones are opened with tok_key, which may be NULL) with a
 * tokenizer_config.json. eos_id is <|endoftext|>'s id. */
tern_status tern_io_export_hf(tern_model *m, const char *tokenizer_dir, const tern_key *tok_key, int eos_id, const char *outdir);

/* Opens a model from a run folder (its latest checkpoint, or step `step` when step > 0), a
 * Hugging Face folder, or a GGUF file, on backend be (NULL: the default). *tokdir (the caller may
 * pass NULL) receives the folder holding its tokenizer files: release it with tern_io_tokdir_free,
 * which for a GGUF file also removes the temporary folder its tokenizer was extracted to. A sealed run's
 * checkpoint is read with key (sealed to the run id in its config.json); without a key a sealed
 * checkpoint is refused, naming the file. */
tern_status tern_io_open_model(const char *path, long long step, tern_model **out, char **tokdir, const tern_key *key,
                               tern_backend *be);
/* Frees a tokenizer folder's name from tern_io_open_model, removing the folder when it is a
 * temporary one extracted from a GGUF file (it holds the marker file .tern-temporary), never
 * otherwise. NULL is a no-op. */
void tern_io_tokdir_free(char *tokdir);
/* The model config of a run folder: config.json's "model" object, or for runs made before it
 * was recorded, the GPT-2 of its n_layer, n_head, n_embd, n_ctx and vocab_size. */
tern_status tern_io_run_model_config(const char *rundir, tern_model_config *cfg);

/* Copies a tokenizer folder's two files (vocab.json + merges.txt, or GPT-2's encoder.json +
 * vocab.bpe) into dstdir under Hugging Face's names. A sealed source file is decrypted in memory
 * with src_key; the copies are sealed with dst_key (identities "tokenizer vocab.json",
 * "tokenizer merges.txt"), or written plainly when dst_key is NULL. Contents are unchanged, so
 * the tokenizer's hash (tern_tok_hash) is too. */
tern_status tern_io_copy_tokenizer(const char *srcdir, const char *dstdir, const tern_key *src_key, const tern_key *dst_key);
#endif
