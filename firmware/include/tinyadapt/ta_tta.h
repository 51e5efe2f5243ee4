/*
 * Early-exit inference for test-time adaptation (TinyTTA, docs/TTA.md).
 *
 * A prepared model is the unchanged int8 backbone plus one small exit head per cut point,
 * each a model of its own (its input is the backbone tensor at the cut, its output the
 * class logits). One sample runs like this:
 *
 *   backbone ops [0, cut_0)  -> copy cut tensor -> head 0 -> entropy < threshold_0 ? exit
 *   backbone ops [cut_0, cut_1) -> ...          -> head 1 -> ...
 *   ...                                           head K-1 always answers
 *
 * so a confident sample skips the rest of the backbone. Each engine has its own arena (the
 * host planner checks that backbone + head arenas fit the board). The entropy is computed in
 * float with the project's own expf/logf (internal/ta_fmath.h, no libm), so the host target
 * and the device take the same exit decisions bit for bit.
 */
#ifndef TA_TTA_H
#define TA_TTA_H

#include <stdint.h>

#include "tinyadapt/ta_engine.h"
#include "tinyadapt/ta_status.h"

#define TA_TTA_MAX_EXITS 4

typedef struct {
    uint16_t cut_op;        /* backbone ops [previous exit's cut_op, cut_op) run before this exit */
    uint16_t cut_tensor;    /* backbone tensor the head reads (output of op cut_op - 1) */
    float threshold;        /* softmax entropy (nats) below which the sample leaves here */
    uint32_t macs_backbone; /* MACs of those backbone ops */
    uint32_t macs_head;     /* MACs of the head */
} ta_tta_exit_t;

/*
 * Batch-1 normalisation adaptation of one head ("norm", docs/TTA.md): running per-channel
 * statistics of the head's conv output z replace the source's inside its int8 affine
 * (the 1x1 depthwise after the conv), through engine overlays, so the blob stays untouched:
 *   gamma' = gamma * sqrt(src_var / var),  beta' = beta + gamma * (src_mu - mu * sqrt(src_var / var))
 * Channels whose statistics stay within the dead zone of the source's keep the source's.
 * The per-channel arrays are the caller's (ta_tta_norm_need bytes for M channels), so the
 * state is sized to the model and can live in the arena next to the loop's work area.
 */
typedef struct {
    uint16_t channels;     /* M */
    uint16_t z_tensor;     /* the head's conv output */
    uint16_t gamma_tensor; /* the affine's int8 weights [M] (per-channel scales gamma_scale) */
    uint16_t beta_tensor;  /* its int32 bias [M] (scale z_scale * gamma_scale) */
    float z_scale;
    int32_t z_zero_point;
    float momentum;  /* EMA weight of one sample */
    float dead_zone; /* mean within dead_zone source stds and std within dead_zone relative */
    const float *src_mu, *src_var, *gamma, *beta, *gamma_scale; /* M each */
    uint16_t shifted; /* channels the last fold took off the source's statistics */
    float *mu, *var;  /* M each: the running statistics (what ADAPT_SAVE persists) */
    int8_t *gamma_q;  /* M: the folded affine the overlays hold */
    int32_t *beta_q;  /* M */
    ta_engine_overlay_t overlays[2];
} ta_tta_norm_t;

/** Bytes of caller storage ta_tta_norm_carve lays out for `channels` (4-aligned). */
uint32_t ta_tta_norm_need(uint32_t channels);
/** Point mu, var, beta_q, gamma_q (in that order) into `mem` (4-aligned, ta_tta_norm_need bytes). */
void ta_tta_norm_carve(ta_tta_norm_t *n, void *mem);

/** Fold the current statistics into gamma_q / beta_q (what the overlays hold). */
void ta_tta_norm_fold(ta_tta_norm_t *n);
/** The statistics back to the source's (and the affine with them). */
void ta_tta_norm_reset(ta_tta_norm_t *n);
/** One sample's z ([positions, channels] int8) into the running statistics. */
void ta_tta_norm_update(ta_tta_norm_t *n, const int8_t *z, uint32_t positions);
/**
 * Set up `n` (filled by the caller up to src arrays and its storage) for `head`: checks the tensors, resets to
 * the source statistics, installs the overlays. @return TA_OK, TA_ERR_ARG, TA_ERR_SHAPE
 */
TA_CHECK_RESULT ta_status_t ta_tta_norm_bind(ta_tta_norm_t *n, ta_engine_t *head);

typedef struct {
    ta_engine_t *backbone;
    ta_engine_t *heads[TA_TTA_MAX_EXITS];
    ta_tta_exit_t exits[TA_TTA_MAX_EXITS];
    uint8_t n_exits;
    uint32_t macs_full; /* the whole backbone: what "MACs skipped" is counted against */
    ta_tta_norm_t *norm[TA_TTA_MAX_EXITS]; /* NULL: that head does not adapt */
    uint8_t adapt;                          /* 1: update the statistics of every head run */
} ta_tta_t;

typedef struct {
    uint8_t exit;          /* which exit answered */
    int32_t prediction;    /* arg max of its logits */
    float entropy;         /* its softmax entropy, nats */
    uint32_t macs;         /* backbone + head MACs this sample used */
    uint32_t macs_skipped; /* macs_full - macs, 0 when the exits cost more than the backbone */
} ta_tta_result_t;

/**
 * Check a runner filled by the caller: 1..TA_TTA_MAX_EXITS exits with increasing cut ops
 * inside the backbone, each head with one int8 input of exactly the cut tensor's size and one
 * int8 output.
 * @return TA_OK, TA_ERR_ARG, TA_ERR_SHAPE (a head does not fit its cut tensor)
 */
TA_CHECK_RESULT ta_status_t ta_tta_check(const ta_tta_t *t);

/**
 * The lowest TA_ARENA_ALIGN-aligned offset, in the backbone's arena, at which a head arena of
 * `head_arena` bytes can start without touching a backbone tensor live across op boundary
 * `cut_op` (written before it and read at or after it), from the blob's own plan. The head
 * then runs inside the backbone's arena where the bytes fit, instead of beside it: only the
 * cut tensor has to survive the head. The result may reach past the backbone's arena.
 */
uint32_t ta_tta_head_base(const ta_engine_t *backbone, uint16_t cut_op, uint32_t head_arena);

/** Run one sample whose input is already written into the backbone's input tensor. */
TA_CHECK_RESULT ta_status_t ta_tta_infer(ta_tta_t *t, ta_tta_result_t *out);

/** Run exit `k`'s head on the backbone's current cut tensor (ops up to cut_op already run).
 *  With t->adapt and t->norm[k], the sample's conv output updates the statistics and the new
 *  affine takes effect from the next sample on. */
TA_CHECK_RESULT ta_status_t ta_tta_head(ta_tta_t *t, uint8_t k, int32_t *prediction, float *entropy);

/** Softmax entropy (nats) of int8 logits with the given quantization; *argmax may be NULL. */
float ta_tta_entropy_int8(const int8_t *logits, uint32_t n, float scale, int32_t zero_point, int32_t *argmax);


/* ---- the adaptation loop shared by host and device (docs/TTA.md, "Safety") ------------- */


/*
 * "input": per input channel (the input tensor's last dimension) the stream's running mean and
 * variance are mapped back to the source data's, in the input's float domain:
 *   x' = (x - mu) * sqrt((src_var + 1e-8) / (var + 1e-8)) + src_mu
 * then requantized for an int8 input. Statistics within the dead zone count as unshifted.
 */
typedef struct {
    uint16_t channels;
    float momentum, dead_zone;
    const float *src_mu, *src_var; /* channels each */
    float *mu, *var;               /* channels each, the caller's storage (any width) */
    uint16_t shifted;              /* channels the last apply took off the source's */
} ta_tta_input_t;

/** Statistics back to the source's. */
void ta_tta_input_reset(ta_tta_input_t *n);
/** Update the statistics with sample `in` (int8 or float32 input tensor), then rewrite it in
 *  place. @return TA_OK, TA_ERR_SHAPE (size not a multiple of channels), TA_ERR_UNSUPPORTED */
TA_CHECK_RESULT ta_status_t ta_tta_input_apply(ta_tta_input_t *n, ta_tensor_t *in);

typedef struct {
    uint32_t window;      /* samples per health check */
    uint32_t min_source;  /* source comparisons a "worse" verdict needs */
    uint32_t pause;       /* samples adaptation stays off after the first rollback (then doubles) */
    uint32_t seed;        /* of the generator that picks the samples compared with the source */
    float narrow;         /* collapse: histogram entropy below narrow * log(classes) ... */
    float shadow_rate;    /* share of samples also run through the source model */
    float worse_margin;   /* worse: mean entropy above the source's by this (nats) ... */
    float widen_margin;   /* ... unless the histogram widened by this, */
    float narrow_margin;  /* or the histogram narrowed by this */
    uint8_t early;        /* 1: "worse" judged as soon as min_source comparisons are in, not
                           * only at the window's check */
    uint8_t probation;    /* 1: while the adapted statistics are unproven (since the start and
                           * every rollback) and off the source's, on probe_share of the
                           * channels or after a comparison that disagreed, the source model
                           * runs on every sample and answers, until the comparisons show the
                           * adapted model more confident without narrowing, or wider without
                           * growing uncertain */
    float probe_share;
} ta_tta_safety_t;

/*
 * One adaptation session over a runner: "input" and/or "norm" adaptation with the health
 * check. Every sample: the input normalised (while not paused), the runner with the heads'
 * statistics updating, and with probability shadow_rate the raw sample again through the
 * source model (overlays off, no input normalisation). Every `window` samples: collapse (the
 * prediction histogram narrowing below narrow * log(classes) while the mean entropy falls,
 * and narrower than the source's on the compared samples) rolls back to the last good state
 * (the source on a repeated collapse); "worse" (on >= min_source compared samples: narrower
 * than the source's, or more uncertain without being wider) rolls back to the source. Either
 * pauses adaptation, twice as long each time.
 */
typedef struct {
    ta_tta_t *runner;
    ta_tta_input_t *input; /* NULL: no "input" part */
    uint8_t norm;          /* "norm" part (runner->norm[k] set for every exit) */
    uint16_t n_classes;
    ta_tta_safety_t cfg;
    /* caller-provided, ta_tta_adapt_need() bytes: the sample's snapshot, the last good statistics,
     * the health check's three prediction histograms (sized by n_classes) */
    uint8_t *work;
    uint32_t work_size;
    /* The source comparisons rerun the sample from op snap_op on, from a copy of its only live
     * tensor there (snap_tensor, snap_bytes, at the start of work): for a float input behind
     * a QUANTIZE, the int8 tensor, a quarter of the raw sample (ta_tta_adapt_start picks it) */
    uint16_t snap_op, snap_tensor;
    uint32_t snap_bytes;
    uint32_t rng;
    uint32_t paused, pause_len, rollbacks, updates, fails, samples;
    uint32_t n_recent, n_shadow, n_disagree; /* n_disagree: compared samples the models answered differently */
    float sum_h, sum_h_adapted, sum_h_source, prev_h;
    float d_marg;          /* the last source verdict's histogram-entropy difference ... */
    uint8_t has_d;         /* ... taken in this window */
    uint8_t has_prev;
    uint8_t trusted;       /* probation passed since the last rollback */
    uint8_t suspect;       /* a comparison disagreed since then: on probation */
    uint16_t *hist, *hist_adapted, *hist_source; /* n_classes each, in work */
} ta_tta_adapt_t;

/** Bytes of `work` an adaptation over `runner` with the input part `input` needs. */
uint32_t ta_tta_adapt_need(const ta_tta_t *runner, const ta_tta_input_t *input, uint32_t n_classes);
/** Check and start (source statistics, the first good state = the source).
 *  @return TA_OK, TA_ERR_ARG, TA_ERR_ARENA (work too small), TA_ERR_UNSUPPORTED */
TA_CHECK_RESULT ta_status_t ta_tta_adapt_start(ta_tta_adapt_t *a);
/** One sample, already in the backbone's input tensor. out->macs includes the source run. */
TA_CHECK_RESULT ta_status_t ta_tta_adapt_step(ta_tta_adapt_t *a, ta_tta_result_t *out);
/** The current statistics become the last good state (e.g. after restoring stored ones). */
void ta_tta_adapt_keep(ta_tta_adapt_t *a);
/** Back to the source statistics (input and heads), the health check's window cleared. */
void ta_tta_adapt_reset(ta_tta_adapt_t *a);
/** Uniform in [0, 1) from a xorshift32 state: the same sequence on host and device. */
float ta_tta_rand(uint32_t *state);

#endif /* TA_TTA_H */
