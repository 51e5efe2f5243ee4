/*
 * libFuzzer target for the model loader, the engine and the trainer: any bytes as a model
 * blob. The CRC field is recomputed first, so mutations get past the checksum and exercise
 * the structural checks (tables, offsets, shapes, op parameters), then init and invoke run,
 * and with a TRAIN section the trainer's checks, steps of both losses and an eval. The blob
 * copy, the arena, every external input and the parameter RAM are heap blocks of exactly the
 * size they should be (ta_run_exact.h), so ASan sees any access past them. Built with
 * ASan/UBSan by `make fuzz-blob`.
 */
#define _POSIX_C_SOURCE 200112L

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Arenas above 1 MiB are refused (TA_ERR_ARENA): a mutated header asking for more would
 * spend the run allocating and clearing it. */
#define TA_RUN_EXACT_MAX_ALLOC (1u << 20)
#include "ta_run_exact.h"
#include "tinyadapt/ta_train.h"

static ta_trainer_t g_trainer;

static void train(ta_engine_t *engine, const ta_model_t *model)
{
    const size_t size = ta_train_param_ram_size(model);
    if (model->train == NULL || size > TA_RUN_EXACT_MAX_ALLOC) {
        return;
    }
    uint8_t *param_ram = (uint8_t *)ta_exact_alloc(size);
    if (param_ram != NULL && ta_train_init(&g_trainer, engine, param_ram, size) == TA_OK) {
        ta_train_result_t r;
        (void)ta_train_step(&g_trainer, TA_LOSS_CROSS_ENTROPY, 0, 0.01f, &r);
        (void)ta_train_step(&g_trainer, TA_LOSS_ENTROPY, 0, 0.01f, &r);
        (void)ta_train_eval(&g_trainer, 0, &r);
        (void)ta_train_reset(&g_trainer);
    }
    free(param_ram);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)ta_run_exact(data, size, 1, train);
    return 0;
}
