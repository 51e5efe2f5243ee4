/*
 * libFuzzer target for the model loader and engine: any bytes as a model blob. The CRC
 * field is recomputed first, so mutations get past the checksum and exercise the
 * structural checks (tables, offsets, shapes, op parameters), then init and invoke run.
 * The blob copy, the arena and every external input are heap blocks of exactly the size
 * they should be (ta_run_exact.h), so ASan sees any access past them. Built with
 * ASan/UBSan by `make fuzz-blob`.
 */
#define _POSIX_C_SOURCE 200112L

#include <stddef.h>
#include <stdint.h>

/* Arenas above 1 MiB are refused (TA_ERR_ARENA): a mutated header asking for more would
 * spend the run allocating and clearing it. */
#define TA_RUN_EXACT_MAX_ALLOC (1u << 20)
#include "ta_run_exact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)ta_run_exact(data, size, 1);
    return 0;
}
