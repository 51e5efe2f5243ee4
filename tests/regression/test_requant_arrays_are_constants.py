"""Regression: a corrupt training blob whose FULLY_CONNECTED shift array was marked an arena
tensor passed prepare's check of the shifts (the arena held valid values then), was
overwritten by an earlier op, and reached the requantization as a shift of 928,211,584 (UBSan,
found by the long loader campaign). Multiplier and shift arrays must be blob constants."""

from pathlib import Path

import pytest

from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import EngineError

BLOB = Path(__file__).parent / "data" / "fc_shift_in_arena.bin"


def test_a_shift_array_in_the_arena_is_refused():
    with pytest.raises(EngineError, match="TA_ERR_CORRUPT"):
        HostEngine(BLOB.read_bytes())
