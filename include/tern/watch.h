/* Watching runs: TensorBoard event files (a writer and a checking reader of TensorBoard's own
 * record format, with protobuf encoded by hand), from a run folder's metrics.jsonl or line by
 * line as a run writes it, and pictures of runs (loss against tokens, task scores) drawn with
 * cairo as SVG or PNG; it knows nothing of how training works. The event format follows
 * TensorFlow's record writer (tensorflow/core/lib/io/record_writer.cc: length, masked CRC-32C,
 * data, masked CRC-32C) and tensorboard/compat/proto/event.proto and summary.proto;
 * docs/FORMATS.md "TensorBoard event files" gives the bytes. */
#ifndef TERN_WATCH_H
#define TERN_WATCH_H
#include "tern/core.h"

/* ---- CRC-32C (Castagnoli), as TensorFlow's records use it ---- */
uint32_t tern_crc32c(const void *p, size_t n);
/* TensorFlow's masking of a stored CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t tern_crc32c_mask(uint32_t crc);

/* ---- writing event files ---- */
typedef struct tern_tb tern_tb;

/* Creates dir (and its parents) and a new event file in it named
 * events.out.tfevents.<seconds since the epoch, 10 digits>.<host name>, with ".1", ".2", ...
 * added when that name is taken, and writes the first event, file_version "brain.Event:2". */
tern_status tern_tb_open(tern_tb **out, const char *dir);
/* One scalar: an Event{wall_time, step, summary{value{tag, simple_value}}}. TensorBoard keeps
 * simple_value as a float32. */
tern_status tern_tb_scalar(tern_tb *tb, const char *tag, int64_t step, double wall_time, float value);
/* An Event{session_log{status: START}} at step: TensorBoard's reader then drops what it read of
 * this and later steps before it, as after a restart. A resumed run writes it at its first step. */
tern_status tern_tb_session_start(tern_tb *tb, int64_t step, double wall_time);
/* Every numeric field of one metrics.jsonl line (a JSON object with a whole-number "step") as a
 * scalar of that step; n may be 0 for a NUL-terminated line. Tags: "val_x" -> "val/x", a task's
 * "hellaswag_x" (lambada_, piqa_) -> "hellaswag/x", "step" and "elapsed_s" none, any other
 * numeric key -> "train/<key>"; strings, booleans, nulls, arrays and objects are skipped. Stores
 * the number of scalars written in *n_written (may be NULL). A line that is not such an object is
 * an error (TERN_EFORMAT) and nothing is written. */
tern_status tern_tb_metrics_line(tern_tb *tb, const char *line, size_t n, double wall_time, size_t *n_written);
/* The tag tern_tb_metrics_line gives a key (into out, n bytes); returns 0 when the key is not
 * written (step, elapsed_s). */
int tern_tb_tag_for_key(const char *key, char *out, size_t n);
/* Hands what was written to the operating system, so that TensorBoard sees it. */
tern_status tern_tb_flush(tern_tb *tb);
/* Flushes, fsyncs and closes the file; frees tb (also on failure). NULL is a no-op. */
tern_status tern_tb_close(tern_tb *tb);
const char *tern_tb_path(const tern_tb *tb);

/* Converts a run folder's metrics.jsonl into one event file in outdir (default RUNDIR/tb),
 * written atomically and named for the run's start: wall times are the start plus each line's
 * elapsed_s, the start being the file's modification time less the last elapsed_s. Stores the
 * file's path (malloc'd; may be NULL) and the number of scalars. */
tern_status tern_tb_convert_run(const char *rundir, const char *outdir, char **path, size_t *n_scalars);

/* ---- reading event files (checked: lengths, both CRCs, every protobuf field used) ---- */
typedef enum {
    TERN_TB_FILE_VERSION, /* text: the file_version string */
    TERN_TB_SCALAR,       /* tag and value: a Summary.Value with simple_value */
    TERN_TB_SESSION_LOG,  /* status: SessionLog's status (1 START, 2 STOP, 3 CHECKPOINT) */
    TERN_TB_OTHER         /* an event (or a summary value) of another kind: graphs, images, ... */
} tern_tb_kind;

typedef struct tern_tb_item {
    tern_tb_kind kind;
    size_t record;     /* the record's index in the file, from 0 */
    uint64_t offset;   /* the record's offset in the file */
    double wall_time;
    int64_t step;
    const char *text;  /* FILE_VERSION: the string; SCALAR: the tag (into the buffer, not NUL-terminated) */
    size_t text_len;
    float value;       /* SCALAR */
    int status;        /* SESSION_LOG */
} tern_tb_item;

/* Called once per item, in file order (an event with a summary of k values gives k items); a
 * status other than TERN_OK stops the reading and is returned. */
typedef tern_status (*tern_tb_item_fn)(void *ctx, const tern_tb_item *it);
/* Reads n bytes of records; name is used in messages (file, record, offset, what was expected
 * and what was found). A file that ends inside a record is an error, as is any CRC mismatch.
 * Stores the number of records (may be NULL). */
tern_status tern_tb_read_buffer(const uint8_t *p, size_t n, const char *name, tern_tb_item_fn fn, void *ctx,
                                size_t *n_records);
tern_status tern_tb_read_file(const char *path, tern_tb_item_fn fn, void *ctx, size_t *n_records);

/* ---- pictures of runs ---- */
typedef struct tern_plot_opts {
    const char *title;  /* NULL: "Loss against tokens" */
    int width, height;  /* pixels (PNG) or points (SVG); 0: 960 x 540, 960 x 860 with task scores */
    int x_steps;        /* 1: steps on the x axis instead of tokens */
    int no_tasks;       /* 1: leave task scores out */
    double smooth;      /* train loss smoothing in [0, 1): TensorBoard's exponential moving average, 0 = none */
} tern_plot_opts;

/* Draws the runs (run folders holding metrics.jsonl and config.json) into out, an .svg or .png
 * file (written atomically): train loss (faint raw, solid smoothed) and val loss (dashed, with
 * markers) against tokens (global batch x seq x grad_accum a step, read from the latest
 * checkpoint's state.json, else config.json's batch as one process), one colour per run; a
 * second panel with task accuracies when a run has them. */
tern_status tern_plot_runs(const char *const *runs, size_t n_runs, const char *out, const tern_plot_opts *opts);
#endif
