/*
 * The serial protocol, version 1: frame layout, command codes, feature bits.
 * docs/PROTOCOL.md is the specification; this header only names its numbers.
 *
 * One frame on the wire:  COBS( header | payload | crc32 ) 0x00
 *
 *   offset 0  u8  version   TA_PROTO_VERSION
 *          1  u8  type      TA_FRAME_REQUEST / _RESPONSE / _NAK
 *          2  u16 seq       request number; echoed by its response
 *          4  u8  cmd       TA_CMD_*
 *          5  i8  status    responses: ta_status_t; requests: 0
 *          6  u16 len       payload bytes, <= TA_PROTO_MAX_PAYLOAD
 *          8  len payload
 *      8+len  u32 crc       CRC-32/IEEE of bytes [0, 8 + len)
 *
 * All integers are little-endian.
 */
#ifndef TA_PROTOCOL_H
#define TA_PROTOCOL_H

#define TA_PROTO_VERSION 1u

/* Largest payload the protocol allows; HELLO reports what a build accepts. */
#define TA_PROTO_MAX_PAYLOAD_LIMIT 1024u

#define TA_FRAME_HEADER_SIZE 8u
#define TA_FRAME_CRC_SIZE 4u
#define TA_FRAME_OVERHEAD (TA_FRAME_HEADER_SIZE + TA_FRAME_CRC_SIZE)

#define TA_FRAME_REQUEST 1u
#define TA_FRAME_RESPONSE 2u
#define TA_FRAME_NAK 3u
#define TA_FRAME_NAK_SEQ 0xFFFFu

typedef enum {
    TA_CMD_HELLO = 0x01,
    TA_CMD_RESET = 0x02,
    TA_CMD_LOAD_BEGIN = 0x10,
    TA_CMD_LOAD_CHUNK = 0x11,
    TA_CMD_LOAD_END = 0x12,
    TA_CMD_SELECT = 0x13,
    TA_CMD_INPUT_WRITE = 0x20,
    TA_CMD_INVOKE = 0x21,
    TA_CMD_OUTPUT_READ = 0x22,
    TA_CMD_PROFILE_READ = 0x23,
    TA_CMD_INFER = 0x24,
    TA_CMD_METRICS = 0x30,
    TA_CMD_TRAIN_FIRST_ = 0x40, /* 0x40-0x4F: TRAIN_* */
    TA_CMD_TRAIN_STEP = 0x40,
    TA_CMD_EVAL = 0x41,
    TA_CMD_SAVE = 0x42,
    TA_CMD_RESET_TO_BASE = 0x43,
    TA_CMD_TRAIN_INFO = 0x44,
    TA_CMD_PARAMS_READ = 0x45,
    TA_CMD_ADAPT_FIRST_ = 0x50, /* 0x50-0x5F: ADAPT_* (early-exit TTA, docs/TTA.md) */
    TA_CMD_ADAPT_SELECT = 0x50,
    TA_CMD_ADAPT_INFER = 0x51,
    TA_CMD_ADAPT_RESET = 0x52,
    TA_CMD_ADAPT_SAVE = 0x53,
    TA_CMD_ADAPT_STATUS = 0x54
} ta_cmd_code_t;

/* HELLO feature bits. */
#define TA_FEATURE_PROFILE (1u << 0)        /* INVOKE can record a per-op profile */
#define TA_FEATURE_INSTR_COUNTER (1u << 1)  /* counts are retired instructions */
#define TA_FEATURE_DSP_KERNELS (1u << 2)    /* built with kernels/dsp */
#define TA_FEATURE_BUILTIN_MODEL (1u << 3)  /* slot 0 holds a compiled-in model */
#define TA_FEATURE_CYCLE_COUNTER (1u << 4)  /* counts are core clock cycles */
#define TA_FEATURE_TIME_COUNTER (1u << 5)   /* counts are nanoseconds of wall time */
#define TA_FEATURE_TRAIN (1u << 6)          /* TRAIN_* commands (0x40-0x45) */
#define TA_FEATURE_NVM (1u << 7)            /* an NVM region: SAVE persists parameters */
#define TA_FEATURE_ADAPT (1u << 8)          /* ADAPT_* commands (0x50-0x54) */

/* RESET_TO_BASE flags. */
#define TA_RESET_PERSIST (1u << 0) /* also save "base" (a tombstone), so the next boot starts from it */

/* TRAIN_INFO flags. */
#define TA_TRAIN_INFO_READY (1u << 0)    /* the selected model has a TRAIN section, the trainer is bound */
#define TA_TRAIN_INFO_NVM (1u << 1)      /* the parameter store is open on the board's NVM */
#define TA_TRAIN_INFO_RESTORED (1u << 2) /* SELECT applied the stored parameters */
#define TA_TRAIN_INFO_STORED (1u << 3)   /* the store holds a valid record (any model) */

/* INVOKE flags. */
#define TA_INVOKE_PROFILE (1u << 0)

/* Model slots. */
#define TA_SLOT_BUILTIN 0u
#define TA_SLOT_RAM 1u
#define TA_SLOT_COUNT 2u

#endif /* TA_PROTOCOL_H */
