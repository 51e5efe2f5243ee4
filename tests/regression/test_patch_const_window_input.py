"""Regression: a corrupt patch blob whose windowed stage op reads a constant as input 0
passed ta_patch_prepare and then dereferenced a NULL region (found by differential
fuzzing). The engine must refuse it with a status."""

from pathlib import Path

import pytest

from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import EngineError

BLOB = Path(__file__).parent / "data" / "patch_window_input_const.bin"


def test_windowed_stage_op_on_a_constant_is_refused():
    with pytest.raises(EngineError, match="TA_ERR_CORRUPT"):
        HostEngine(BLOB.read_bytes())
