"""The reference interpreters live in the package (tinyadapt.reference) so the demo and
benchmarks use them too; tests import them from here."""

from tinyadapt.reference import (  # noqa: F401
    InterpreterRejected,
    run_tflite,
    run_tflm,
    tflm_arena_allocations,
    tflm_arena_head,
)
