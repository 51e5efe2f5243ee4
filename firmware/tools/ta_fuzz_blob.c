/*
 * libFuzzer target for the model loader and engine: any bytes as a model blob. The CRC
 * field is recomputed first, so mutations get past the checksum and exercise the
 * structural checks (tables, offsets, shapes, op parameters), then init and invoke run
 * with a zeroed arena. Built with ASan/UBSan by `make fuzz-blob`.
 */
#include <stdint.h>
#include <string.h>

#include "tinyadapt/ta_engine.h"
#include "tinyadapt/ta_train.h"

#define MAX_BLOB (1u << 20)
#define MAX_ARENA (1u << 20)

static _Alignas(16) uint8_t g_blob[MAX_BLOB];
static _Alignas(16) uint8_t g_arena[MAX_ARENA];
static _Alignas(16) uint8_t g_param_ram[MAX_ARENA];
static ta_trainer_t g_trainer;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_BLOB) {
        return 0;
    }
    memcpy(g_blob, data, size);
    if (size >= sizeof(ta_model_header_t)) {
        uint32_t total;
        memcpy(&total, g_blob + 8, sizeof(total));
        if (total >= TA_MODEL_CRC_START && total <= size) {
            const uint32_t crc = ta_crc32(0, g_blob + TA_MODEL_CRC_START, total - TA_MODEL_CRC_START);
            memcpy(g_blob + 12, &crc, sizeof(crc));
        }
    }
    ta_model_t model;
    ta_engine_t engine;
    if (ta_model_load(&model, g_blob, size) != TA_OK || model.header->arena_size > MAX_ARENA) {
        return 0;
    }
    if (ta_engine_init(&engine, &model, g_arena, model.header->arena_size) != TA_OK) {
        return 0;
    }
    memset(g_arena, 0, model.header->arena_size);
    (void)ta_engine_invoke(&engine);
    /* A training section: the trainer's own checks, then steps of both losses and an eval. */
    if (model.train != NULL && ta_train_param_ram_size(&model) <= MAX_ARENA &&
        ta_train_init(&g_trainer, &engine, g_param_ram, MAX_ARENA) == TA_OK) {
        ta_train_result_t r;
        (void)ta_train_step(&g_trainer, TA_LOSS_CROSS_ENTROPY, 0, 0.01f, &r);
        (void)ta_train_step(&g_trainer, TA_LOSS_ENTROPY, 0, 0.01f, &r);
        (void)ta_train_eval(&g_trainer, 0, &r);
        (void)ta_train_reset(&g_trainer);
    }
    return 0;
}
