/*
 * Loads, prepares and runs every model blob named on the command line, with
 * zeroed inputs, and prints one status per file. Built with ASan/UBSan by the
 * tests to show that corrupt blobs give status codes, never a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyadapt/ta_engine.h"

#define MAX_BLOB (8u << 20)
#define MAX_ARENA (8u << 20)

static _Alignas(16) uint8_t g_blob[MAX_BLOB];
static _Alignas(16) uint8_t g_arena[MAX_ARENA];

static ta_status_t check(const uint8_t *blob, size_t size)
{
    ta_model_t model;
    ta_engine_t engine;
    TA_TRY(ta_model_load(&model, blob, size));
    TA_ENSURE(model.header->arena_size <= MAX_ARENA, TA_ERR_ARENA);
    TA_TRY(ta_engine_init(&engine, &model, g_arena, model.header->arena_size));
    memset(g_arena, 0, model.header->arena_size);
    return ta_engine_invoke(&engine);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; ++i) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            printf("%s ERROR_OPEN\n", argv[i]);
            continue;
        }
        size_t n = fread(g_blob, 1, MAX_BLOB, f);
        fclose(f);
        printf("%s %s\n", argv[i], ta_status_name(check(g_blob, n)));
    }
    return 0;
}
