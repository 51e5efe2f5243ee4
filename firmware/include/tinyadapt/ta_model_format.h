/*
 * The tinyadapt model blob, format version 1: what the host converter writes
 * and the device loader checks (docs/SPEC.md describes every field).
 *
 *   +--------------------+ 0
 *   | ta_model_header_t  |   magic, version, size, CRC, table offsets
 *   +--------------------+ tensors_offset
 *   | ta_tensor_rec_t[]  |   every tensor: dtype, shape, quant, where it lives
 *   +--------------------+ ops_offset
 *   | ta_op_rec_t[]      |   ops in execution order
 *   +--------------------+ io_offset
 *   | uint16_t[]         |   model input tensor indices, then outputs
 *   +--------------------+ data_offset
 *   | data section       |   weights, biases, per-channel multipliers,
 *   |                    |   op parameter structs, op tensor-index lists
 *   +--------------------+ total_size
 *
 * All integers are little-endian; every table and every data item is 4-byte
 * aligned, so a 4-byte-aligned blob can be read in place (from flash) with
 * no copy. Activation tensors live in the arena the caller gives the engine,
 * at offsets the host planner chose; constants live in the data section.
 */
#ifndef TA_MODEL_FORMAT_H
#define TA_MODEL_FORMAT_H

#include <stdint.h>

#define TA_MODEL_MAGIC 0x424D4154u /* "TAMB" read as a little-endian u32 */
#define TA_MODEL_VERSION 1u
#define TA_MAX_DIMS 6
#define TA_MAX_OP_INPUTS 16
#define TA_MAX_OP_OUTPUTS 2
#define TA_NO_TENSOR (-1) /* an absent optional op input, e.g. FC without bias */

/* The CRC covers everything after the crc32 field. */
#define TA_MODEL_CRC_START 16u

typedef enum {
    TA_DTYPE_INT8 = 1,
    TA_DTYPE_INT16 = 2,
    TA_DTYPE_INT32 = 3,
    TA_DTYPE_FLOAT32 = 4,
    TA_DTYPE_UINT8 = 5 /* only a model input that QUANTIZE (REQUANTIZE) turns into int8 */
} ta_dtype_t;

typedef enum {
    TA_TENSOR_ACTIVATION = 0, /* lives in the arena at `offset` */
    TA_TENSOR_CONST = 1,      /* lives in the blob's data section at `offset` */
    TA_TENSOR_PATCH = 2,      /* exists only tile by tile inside the patch stage: `offset` is
                                 its region buffer in the arena, sized by the patch plan */
    TA_TENSOR_EXTERNAL = 3    /* a model input kept outside the arena (a camera frame in external
                                 memory, say): the caller binds its storage with
                                 ta_engine_bind_input; only the patch stage reads it, one tile's
                                 window at a time; `offset` is 0 */
} ta_tensor_kind_t;

/* External inputs must be among the first TA_MAX_EXTERNAL_INPUTS model inputs. */
#define TA_MAX_EXTERNAL_INPUTS 4

/* Header flags. A loader rejects flags it does not know: a patch-planned blob has no arena
 * room for its stage's full-size tensors, so it must never run layer by layer. */
#define TA_MODEL_FLAG_PATCH 0x1u
#define TA_MODEL_FLAG_TRAIN 0x2u /* a TRAIN section: ops past n_forward_ops are backward ops */
#define TA_MODEL_KNOWN_FLAGS (TA_MODEL_FLAG_PATCH | TA_MODEL_FLAG_TRAIN)

/* Operator codes. Stable: they are part of the blob format. */
typedef enum {
    TA_OP_CONV_2D = 1,
    TA_OP_DEPTHWISE_CONV_2D = 2,
    TA_OP_FULLY_CONNECTED = 3,
    TA_OP_ADD = 4,
    TA_OP_MUL = 5,
    TA_OP_AVERAGE_POOL_2D = 6,
    TA_OP_MAX_POOL_2D = 7,
    TA_OP_MEAN = 8,
    TA_OP_PAD = 9,
    TA_OP_RESHAPE = 10,
    TA_OP_SOFTMAX = 11,
    TA_OP_CONCATENATION = 12,
    TA_OP_LOGISTIC = 13,
    TA_OP_HARD_SWISH = 14,
    TA_OP_QUANTIZE = 15,   /* float32 -> int8 */
    TA_OP_DEQUANTIZE = 16, /* int8 -> float32 */
    TA_OP_TRANSPOSE = 17,
    TA_OP_REQUANTIZE = 18, /* int8 -> int8 with new scale / zero point (TFLite QUANTIZE int8->int8) */
    TA_OP_SUB = 19,
    TA_OP_COUNT_ = 20,     /* one past the largest forward code */

    /* Backward ops (TRAIN section only): each is the gradient of one forward op, reading the
     * saved activations it needs and float32 gradient tensors (ta_backward.h). */
    TA_OP_BACKWARD_FIRST_ = 64,
    TA_OP_LOSS_GRAD = 64,                /* softmax + cross-entropy / entropy at the logits */
    TA_OP_CONV_2D_BACKWARD = 65,
    TA_OP_DEPTHWISE_CONV_2D_BACKWARD = 66,
    TA_OP_FULLY_CONNECTED_BACKWARD = 67,
    TA_OP_ADD_BACKWARD = 68,
    TA_OP_AVERAGE_POOL_2D_BACKWARD = 69,
    TA_OP_MEAN_BACKWARD = 70,
    TA_OP_PAD_BACKWARD = 71,
    TA_OP_RESHAPE_BACKWARD = 72,
    TA_OP_MAX_POOL_2D_BACKWARD = 73,
    TA_OP_BACKWARD_END_ = 74             /* one past the largest backward code */
} ta_opcode_t;

typedef struct {
    uint32_t magic;          /* TA_MODEL_MAGIC */
    uint16_t version;        /* TA_MODEL_VERSION */
    uint16_t header_size;    /* sizeof(ta_model_header_t) */
    uint32_t total_size;     /* bytes in the whole blob */
    uint32_t crc32;          /* CRC-32/IEEE of bytes [TA_MODEL_CRC_START, total_size) */
    uint32_t flags;          /* TA_MODEL_FLAG_* */
    uint16_t n_tensors;
    uint16_t n_ops;
    uint16_t n_inputs;
    uint16_t n_outputs;
    uint32_t arena_size;     /* bytes of activation arena the plan needs (peak SRAM) */
    uint32_t tensors_offset; /* all offsets are from the start of the blob */
    uint32_t ops_offset;
    uint32_t io_offset;
    uint32_t data_offset;
    uint32_t data_size;
    uint32_t patch_offset;   /* with TA_MODEL_FLAG_PATCH: data offset of ta_patch_header_t */
    uint32_t train_offset;   /* with TA_MODEL_FLAG_TRAIN: data offset of ta_train_header_t */
    uint32_t reserved;
} ta_model_header_t;

typedef struct {
    uint8_t dtype;               /* ta_dtype_t */
    uint8_t kind;                /* ta_tensor_kind_t */
    uint8_t ndim;                /* 0..TA_MAX_DIMS */
    uint8_t flags;               /* reserved, 0 */
    int32_t dims[TA_MAX_DIMS];   /* dims[0..ndim) are used, the rest 0 */
    uint32_t offset;             /* arena offset (activation) or data-section offset (const) */
    uint32_t size;               /* bytes: product(dims) * dtype size */
    int32_t zero_point;          /* per-tensor zero point */
    float scale;                 /* per-tensor scale (per-channel scales are folded into op multipliers) */
    uint32_t reserved;
} ta_tensor_rec_t;

typedef struct {
    uint16_t opcode;         /* ta_opcode_t */
    uint8_t n_inputs;
    uint8_t n_outputs;
    uint32_t io_offset;      /* data offset of int16 tensor indices: inputs, then outputs */
    uint32_t params_offset;  /* data offset of the op's parameter struct (ta_op_params.h) */
    uint32_t params_size;    /* must equal sizeof that struct */
    uint32_t scratch_offset; /* arena offset of the op's scratch buffer */
    uint32_t scratch_size;   /* 0 when the op needs none */
} ta_op_rec_t;

/*
 * Patch plan (MCUNetV2 patch-based inference), present with TA_MODEL_FLAG_PATCH.
 *
 * Ops [0, n_stage_ops) form the patch stage. For each of n_tiles tiles, in order, the
 * engine runs every stage op on one rectangular region of each of its tensors, then the
 * remaining ops run layer by layer. Regions are in the full tensor's (y, x) coordinates.
 *
 *   ta_patch_header_t
 *   ta_patch_tensor_t [n_regions]            which tensors have regions, where their buffers are
 *   ta_region_t       [n_tiles][n_regions]   each tensor's region in each tile
 *
 * A region tensor of kind ACTIVATION also has full-size storage: the stage input (copied
 * window by window into the region buffer before the tile runs) or the stage output
 * (copied out of the region buffer once its producer has run). A stage input of kind
 * EXTERNAL is copied in the same way, from the storage the caller bound.
 *
 * mode TA_PATCH_MODE_TILES: each tile computes its whole region of every tensor, so
 * neighbouring tiles recompute their overlap (the halo).
 * mode TA_PATCH_MODE_STREAM: the stage output is cut into vertical strips, each walked top
 * to bottom in `bands` row bands (tiles are strip-major). Within a strip a tensor's region
 * keeps its columns, and its rows [y0, y1) never move backwards. The rows a band shares with
 * the previous band of its strip are not recomputed: right after a stage op writes its
 * output region, the rows the next band also reads (from the next region's y0) are saved
 * to the tensor's stream buffer, and the next band restores them to the head of its region
 * before computing only rows [max(previous y1, y0), y1). Stream buffers live for the whole
 * stage. After the regions: uint32_t bands, then ta_stream_buffer_t[n_regions] (capacity 0:
 * the tensor keeps no rows, e.g. a stage input, which is copied in whole as with tiles).
 */
#define TA_PATCH_MODE_TILES 0u
#define TA_PATCH_MODE_STREAM 1u

typedef struct {
    uint16_t n_stage_ops;
    uint16_t n_tiles;
    uint16_t n_regions;
    uint16_t mode;           /* TA_PATCH_MODE_* */
    uint32_t tensors_offset; /* data offset of ta_patch_tensor_t[n_regions] */
    uint32_t regions_offset; /* data offset of ta_region_t[n_tiles * n_regions] */
} ta_patch_header_t;

typedef struct {
    uint16_t tensor;   /* tensor index: a 4-D [1, H, W, C] activation or patch tensor */
    uint16_t reserved;
    uint32_t offset;   /* arena offset of the region buffer */
    uint32_t capacity; /* bytes of the region buffer */
} ta_patch_tensor_t;

typedef struct {
    int16_t y0, y1; /* rows [y0, y1) */
    int16_t x0, x1; /* columns [x0, x1) */
} ta_region_t;

/*
 * Training section (present with TA_MODEL_FLAG_TRAIN). Ops [0, n_forward_ops) are the model
 * (what ta_engine_invoke runs); ops [n_forward_ops, n_ops) are backward ops, run in order by
 * the trainer after the forward pass (ta_train.h). They are ordinary op records, so the loader
 * bounds their tensors, parameters and scratch like any op's, and the arena plan covers the
 * whole training step: the activations they read stay alive until they have run.
 */
typedef struct {
    uint16_t n_forward_ops;
    uint16_t reserved;
    uint32_t flags;     /* 0 */
    uint32_t reserved2[2];
} ta_train_header_t;

typedef struct {
    uint32_t offset;   /* arena offset of the stream buffer */
    uint32_t capacity; /* bytes; 0 when the tensor keeps no rows between tiles */
} ta_stream_buffer_t;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(ta_model_header_t) == 64, "header is 64 bytes");
_Static_assert(sizeof(ta_tensor_rec_t) == 48, "tensor record is 48 bytes");
_Static_assert(sizeof(ta_op_rec_t) == 24, "op record is 24 bytes");
#else
typedef char ta_header_size_check_[(sizeof(ta_model_header_t) == 64) ? 1 : -1];
typedef char ta_tensor_size_check_[(sizeof(ta_tensor_rec_t) == 48) ? 1 : -1];
typedef char ta_op_size_check_[(sizeof(ta_op_rec_t) == 24) ? 1 : -1];
#endif

#endif /* TA_MODEL_FORMAT_H */
