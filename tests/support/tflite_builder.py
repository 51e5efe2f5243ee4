"""The tests' flatbuffer builder now lives in the package (tinyadapt.convert.tflite_writer),
which also writes the TTA exit heads; re-exported here for the tests."""

from tinyadapt.convert.tflite_writer import *  # noqa: F401,F403
from tinyadapt.convert.tflite_writer import ACTIVATIONS, BUILTIN_CODES, ModelBuilder, pack_model, quantize, schema  # noqa: F401
