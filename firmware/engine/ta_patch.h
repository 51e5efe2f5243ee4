/*
 * Patch-based execution of the patch stage (MCUNetV2): internal to the engine.
 *
 * ta_patch_prepare checks, once at init, that every stage op can run on regions and that
 * every tile's regions are consistent; ta_patch_run then runs the stage tile by tile,
 * writing the stage output into its full-size tensor.
 */
#ifndef TA_PATCH_H
#define TA_PATCH_H

#include "tinyadapt/ta_engine.h"

ta_status_t ta_patch_prepare(const ta_engine_t *engine);
ta_status_t ta_patch_run(ta_engine_t *engine);

#endif /* TA_PATCH_H */
