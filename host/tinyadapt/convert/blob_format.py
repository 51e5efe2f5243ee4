"""Constants of the model blob format, mirroring firmware/include/tinyadapt/ta_model_format.h.

tests/test_blob_format.py parses the C header and checks these values against it.
"""

import numpy as np

MAGIC = 0x424D4154  # "TAMB"
VERSION = 1
HEADER_SIZE = 64
TENSOR_REC_SIZE = 48
OP_REC_SIZE = 24
CRC_START = 16
MAX_DIMS = 6
MAX_OP_INPUTS = 16
NO_TENSOR = -1

KIND_ACTIVATION = 0
KIND_CONST = 1
KIND_PATCH = 2
KIND_EXTERNAL = 3  # a model input outside the arena, read window by window by a patch stage

FLAG_PATCH = 0x1
FLAG_TRAIN = 0x2  # a TRAIN section: ops past n_forward_ops are backward ops
TRAIN_HEADER_SIZE = 16

# ta_patch_header_t.mode
PATCH_MODE_TILES = 0   # tiles compute their whole regions (halos recomputed)
PATCH_MODE_STREAM = 1  # full-width row bands keep halo rows between tiles (computed once)

DTYPES = {np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3, np.dtype(np.float32): 4,
          np.dtype(np.uint8): 5}  # uint8: a model input that QUANTIZE turns into int8
DTYPE_NUMPY = {v: k for k, v in DTYPES.items()}

OPCODES = {
    "CONV_2D": 1,
    "DEPTHWISE_CONV_2D": 2,
    "FULLY_CONNECTED": 3,
    "ADD": 4,
    "MUL": 5,
    "AVERAGE_POOL_2D": 6,
    "MAX_POOL_2D": 7,
    "MEAN": 8,
    "PAD": 9,
    "RESHAPE": 10,
    "SOFTMAX": 11,
    "CONCATENATION": 12,
    "LOGISTIC": 13,
    "HARD_SWISH": 14,
    "QUANTIZE": 15,
    "DEQUANTIZE": 16,
    "TRANSPOSE": 17,
    "REQUANTIZE": 18,
    "SUB": 19,
}
# Backward ops, only in a blob's TRAIN section (firmware/include/tinyadapt/ops/ta_backward.h).
BACKWARD_OPCODES = {
    "LOSS_GRAD": 64,
    "CONV_2D_BACKWARD": 65,
    "DEPTHWISE_CONV_2D_BACKWARD": 66,
    "FULLY_CONNECTED_BACKWARD": 67,
    "ADD_BACKWARD": 68,
    "AVERAGE_POOL_2D_BACKWARD": 69,
    "MEAN_BACKWARD": 70,
    "PAD_BACKWARD": 71,
    "RESHAPE_BACKWARD": 72,
    "MAX_POOL_2D_BACKWARD": 73,
}
OPCODE_NAMES = {v: k for k, v in {**OPCODES, **BACKWARD_OPCODES}.items()}
