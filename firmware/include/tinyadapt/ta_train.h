/*
 * On-device training: one SGD step at a time, batch size 1, on an int8 model whose blob has a
 * TRAIN section (docs/SPEC.md, "Training section").
 *
 * The host planned everything (host/tinyadapt/train): which layers are updated, which output
 * channels of them (the kept channels), the backward ops (ops [n_forward_ops, n_ops) of the
 * blob, run in order after the forward pass), and one arena plan in which the activations the
 * backward ops read stay alive and every gradient buffer has its place. The device checks and
 * runs it:
 *
 *   ta_model_load(&model, blob, size);           also validates the TRAIN section
 *   ta_engine_init(&engine, &model, arena, ...); the training-step arena (header arena_size)
 *   static uint8_t ram[...];                     ta_train_param_ram_size(&model) bytes
 *   ta_train_init(&trainer, &engine, ram, sizeof ram);
 *   write the input through ta_engine_input, then
 *   ta_train_step(&trainer, TA_LOSS_CROSS_ENTROPY, label, 0.01f, &result);
 *
 * Parameter RAM holds only what is updated: for every updated layer, float32 master copies
 * (int-domain units) of its kept output channels' weights and of its bias, then the int8
 * weights of the kept channels alone and an int32 copy of the bias, which the engine uses in
 * place of the blob's (ta_engine.h: a whole bias through an overlay, kept weight channels
 * through filter rows the op recomputes its output channels from; a layer whose channels are
 * all kept reads its whole filter from RAM). Every other weight stays in flash.
 *
 *   param RAM: [ image: masters of every slot ][ int8 kept rows, int32 biases ]
 *
 * The image (ta_train_params) is what SAVE persists and a restore loads: the int8 / int32
 * copies are what the masters round to, so they are recomputed, never stored.
 *
 * Numerics (so the host target and a Cortex-M give bit-identical parameters): the forward pass
 * is the bit-exact int8 engine; the backward pass is float32 on dequantized values in a fixed
 * summation order, with our own expf/logf (ta_fmath.h), compiled with -ffp-contract=off.
 * Quantization-aware scaling: the int-domain weight gradient s_W * dL/dW is scaled by s_W^-2 and
 * the bias gradient s_b * dL/db by s_b^-2 (s_b = s_W * s_x); plain SGD on the masters, then the
 * int8 / int32 copies are requantized from them (round half away from zero, clamp).
 */
#ifndef TA_TRAIN_H
#define TA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/ta_engine.h"
#include "tinyadapt/ta_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layers with updated parameters a trainer can hold (the full update of MobileNetV2 has 53). */
#define TA_TRAIN_MAX_UPDATES 96

typedef enum {
    TA_LOSS_CROSS_ENTROPY = 0, /* supervised: -log softmax(z)[label] */
    TA_LOSS_ENTROPY = 1        /* unsupervised (test-time adaptation): -sum p log p; label ignored */
} ta_loss_kind_t;

typedef struct {
    float loss;              /* loss of this sample before the update */
    int32_t prediction;      /* argmax of the model output before the update */
    uint32_t updated_params; /* parameters (weights + biases) written by the step; 0 for eval */
} ta_train_result_t;

/* Where one updated layer's parameters live in parameter RAM. */
typedef struct {
    uint16_t op;           /* the backward op that updates them */
    uint16_t n_kept;       /* kept output channels (weights updated), 0 for bias only */
    int8_t *weight;        /* int8 weights of the kept channels, the filter's layout restricted
                              to them (ta_op_rows_t); NULL: weights frozen */
    int32_t *bias;         /* int32 copy of the whole bias (NULL: bias frozen) */
    float *weight_master;  /* n_kept rows of `row`, channel after channel, int-domain */
    float *bias_master;    /* one per output channel, int-domain */
    uint32_t row;          /* weights per output channel */
    uint32_t channels;     /* output channels */
} ta_train_slot_t;

typedef struct ta_trainer {
    ta_engine_t *engine;
    uint8_t *ram;
    uint32_t ram_size;   /* parameter RAM in use */
    uint32_t image_size; /* its first image_size bytes: the masters (ta_train_params) */
    uint16_t n_slots;
    uint16_t n_overlays;
    uint16_t n_rows;
    uint8_t ready;
    ta_train_slot_t slots[TA_TRAIN_MAX_UPDATES];
    ta_engine_overlay_t overlays[2 * TA_TRAIN_MAX_UPDATES];
    ta_op_rows_t rows[TA_TRAIN_MAX_UPDATES]; /* forward ops reading a partly kept filter */
} ta_trainer_t;

/**
 * Bind to an initialised engine whose model has a TRAIN section: check every backward op,
 * lay out `param_ram` (at least ta_train_param_ram_size bytes, 4-byte aligned), copy the
 * updated parameters into it from the blob and make the engine read them from there.
 * @return TA_OK, TA_ERR_ARG, TA_ERR_STATE (engine not initialised), TA_ERR_UNSUPPORTED (no
 *         TRAIN section; a partly kept filter read by a patch-stage op or by another kind of
 *         input), TA_ERR_ARENA (param RAM too small), or a backward op's check error
 */
TA_CHECK_RESULT ta_status_t ta_train_init(ta_trainer_t *t, ta_engine_t *engine, uint8_t *param_ram,
                                          size_t param_ram_size);

/** Parameter RAM the model's training plan needs, bytes (0 without a TRAIN section or when the
 *  section is inconsistent: ta_train_init reports why). */
size_t ta_train_param_ram_size(const ta_model_t *model);

/**
 * One training step on the sample already written to input 0: forward, loss, backward with
 * the SGD update of every updated layer applied as soon as its gradient is known.
 * @param label  class index for TA_LOSS_CROSS_ENTROPY (ignored for TA_LOSS_ENTROPY)
 * @return TA_OK, TA_ERR_ARG (label out of range, learning rate not finite), TA_ERR_STATE
 */
TA_CHECK_RESULT ta_status_t ta_train_step(ta_trainer_t *t, ta_loss_kind_t loss, int32_t label,
                                          float learning_rate, ta_train_result_t *out);

/** Forward pass and cross-entropy loss only (label < 0: loss 0, prediction only). */
TA_CHECK_RESULT ta_status_t ta_train_eval(ta_trainer_t *t, int32_t label, ta_train_result_t *out);

/** The updatable parameter image (what SAVE persists): the float32 masters of the kept
 *  weights and updated biases, the first bytes of parameter RAM. */
TA_CHECK_RESULT ta_status_t ta_train_params(const ta_trainer_t *t, const uint8_t **data, size_t *len);

/** Restore an image from ta_train_params of the same model (`len` must match exactly); the
 *  int8 / int32 copies are recomputed from it. */
TA_CHECK_RESULT ta_status_t ta_train_load_params(ta_trainer_t *t, const uint8_t *data, size_t len);

/** Copy the base parameters back from the blob (RESET_TO_BASE). */
TA_CHECK_RESULT ta_status_t ta_train_reset(ta_trainer_t *t);

#ifdef __cplusplus
}
#endif

#endif /* TA_TRAIN_H */
