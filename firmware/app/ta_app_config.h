/*
 * Build-time sizes of the app's static buffers. A board overrides any of
 * them with -D on the command line, or collects its overrides in one header
 * named by -DTA_APP_CONFIG_HEADER='"board_config.h"'.
 */
#ifndef TA_APP_CONFIG_H
#define TA_APP_CONFIG_H

#ifdef TA_APP_CONFIG_HEADER
#include TA_APP_CONFIG_HEADER
#endif

#include "tinyadapt/ta_protocol.h"

/* Largest request/response payload this build accepts (HELLO reports it). */
#ifndef TA_PROTO_MAX_PAYLOAD
#define TA_PROTO_MAX_PAYLOAD TA_PROTO_MAX_PAYLOAD_LIMIT
#endif

/* Ops whose instruction count one INVOKE can record; later ops are not profiled. */
#ifndef TA_APP_MAX_PROFILE_OPS
#define TA_APP_MAX_PROFILE_OPS 256
#endif

/* Word written over the arena and the free stack to find high-water marks. */
#ifndef TA_APP_PAINT_WORD
#define TA_APP_PAINT_WORD 0xA55AC33Cu
#endif

#if TA_PROTO_MAX_PAYLOAD < 64 || TA_PROTO_MAX_PAYLOAD > TA_PROTO_MAX_PAYLOAD_LIMIT
#error "TA_PROTO_MAX_PAYLOAD must be in [64, 1024]"
#endif
#if TA_APP_MAX_PROFILE_OPS < 1 || TA_APP_MAX_PROFILE_OPS > 65535
#error "TA_APP_MAX_PROFILE_OPS must be in [1, 65535]"
#endif

#endif /* TA_APP_CONFIG_H */
