/*
 * Slot 0: the model compiled into the image.
 *
 * Build with -DTA_MODEL_HEADER='"path/model.h"' -DTA_MODEL_SYMBOL=name, where
 * the header is what `tinyadapt convert` writes (host/tinyadapt/convert/
 * cheader.py): `static const uint8_t name[]` (16-byte aligned, so it stays in
 * flash and is read in place) and `static const uint32_t name_len`.
 * Without TA_MODEL_HEADER the image has no compiled-in model.
 */
#include <stddef.h>

#include "ta_app_internal.h"

#ifdef TA_MODEL_HEADER

#include TA_MODEL_HEADER

#ifndef TA_MODEL_SYMBOL
#error "TA_MODEL_HEADER also needs TA_MODEL_SYMBOL, the name of the blob array in that header"
#endif

#define TA_CAT_(a, b) a##b
#define TA_CAT(a, b) TA_CAT_(a, b)

const uint8_t *ta_builtin_model(uint32_t *size)
{
    *size = TA_CAT(TA_MODEL_SYMBOL, _len);
    return TA_MODEL_SYMBOL;
}

#else

const uint8_t *ta_builtin_model(uint32_t *size)
{
    *size = 0;
    return NULL;
}

#endif
