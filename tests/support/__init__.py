"""Test support: build tiny .tflite models without TensorFlow and run them on
the two reference interpreters (tflite-runtime BUILTIN_REF and TFLM)."""

from .tflite_builder import ModelBuilder, quantize
from .reference import (
    InterpreterRejected,
    run_tflite,
    run_tflm,
    tflm_arena_allocations,
    tflm_arena_head,
)

__all__ = [
    "ModelBuilder",
    "quantize",
    "InterpreterRejected",
    "run_tflite",
    "run_tflm",
    "tflm_arena_allocations",
    "tflm_arena_head",
]
