/* Private to src/data: the pieces `prepare` is built from (inputs, JSON Lines, the output
 * folder) and the byte buffer they share. Not included from outside src/data. */
#ifndef TERN_DATA_INT_H
#define TERN_DATA_INT_H

#include "tern/data.h"

/* A growable byte buffer; the owner frees p. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} data_buf;

/* Makes room for k more bytes in b, doubling its capacity from `first` as needed; 0 when memory
 * runs out (b is then as it was). */
int data_buf_reserve(data_buf *b, size_t k, size_t first);

/* Doubles the capacity *cap (elements of `size` bytes) of the array p, or makes it `first` when
 * it is 0; returns the new array, or NULL when memory runs out (p is then as it was). */
void *data_grow(void *p, size_t *cap, size_t size, size_t first);

/* ---- text statistics (jsonl.c) ---- */
typedef struct {
    uint64_t nul;      /* NUL bytes */
    uint64_t bad_utf8; /* bytes that are not part of well-formed UTF-8 */
    int blank;         /* every byte so far is white space (start it at 1) */
} data_stats;
/* Adds the counts of p[0..n) to s. A sequence cut by the end of p counts as bad: callers cut
 * text where whole characters end (tern_tok_split_point does). */
void data_text_stats(const uint8_t *p, size_t n, data_stats *s);

/* The first byte of p[0..n) that is not part of well-formed UTF-8, or n when there is none. */
size_t data_utf8_first_bad(const uint8_t *p, size_t n);

/* ---- JSON Lines (jsonl.c) ---- */
typedef struct {
    tern_jsonl_status st;
    size_t at;       /* the byte of the line where the problem was found */
    const char *why; /* what it is, for messages */
} data_jsonl_result;
/* tern_jsonl_text with the caller's buffers, reused from line to line: the value goes to text,
 * member names are decoded into scratch. Fails only for out of memory. */
tern_status data_jsonl_text(const uint8_t *line, size_t n, const char *key, data_buf *text, data_buf *scratch, data_jsonl_result *r);

/* ---- inputs (input.c) ---- */
typedef struct {
    char *path;      /* "-" for standard input */
    uint32_t source; /* the index of the input argument it came from */
    uint64_t size;   /* its size on disk; 0 for standard input and pipes */
} data_file;
/* Expands the arguments into files: a file as it is, a folder into the files below it, "-"
 * into standard input. Every argument must exist; a folder must hold a file. */
tern_status data_list_inputs(const char *const *inputs, size_t n, data_file **files, size_t *n_files);
void data_files_free(data_file *f, size_t n);

/* ---- the output folder (outdir.c) ---- */
/* Everything is written into a hidden folder beside DATADIR (.NAME.tern-prepare-PID), which
 * replaces DATADIR in one rename when all of it is written: a reader sees no data folder, the old
 * one, or the new one, never a part. */
typedef struct {
    char *out;     /* DATADIR, without trailing slashes */
    char *parent;  /* the folder that holds it */
    char *stage;   /* the hidden folder being written */
    char **made;   /* folders above DATADIR that this prepare created, outermost first */
    size_t n_made, n_created;
    int replace;   /* DATADIR holds a data folder that the commit replaces */
    int committed;
} data_stage;
/* Checks that DATADIR can be written: absent, an empty folder, or (with force) a data folder. */
tern_status data_stage_check(data_stage *s, const char *out_dir, int force);
/* Creates the folders above DATADIR that are missing, removes hidden folders that earlier
 * prepares into DATADIR left when they were killed, and makes the stage. */
tern_status data_stage_begin(data_stage *s);
/* Moves the stage into place (replacing an old data folder) and makes it durable. */
tern_status data_stage_commit(data_stage *s);
/* Removes the stage and the folders begin created; frees s. Safe after commit or check alone. */
void data_stage_end(data_stage *s);
/* Removes a folder and what it holds; 0 on success. */
int data_remove_tree(const char *path);

#endif
