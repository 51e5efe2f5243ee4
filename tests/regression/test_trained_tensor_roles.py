"""Regression: a corrupt training blob named one int32 tensor as a FULLY_CONNECTED_BACKWARD's
bias and as its kept-channel list. The trainer checked the list against the blob's bytes, then
installed the bias's RAM copy over that tensor, so the first bias update rewrote the list and
the weight update read channel -26 (UBSan, found by the loader campaign). A tensor that
training rewrites may only be a filter or bias (ta_engine_set_overlays)."""

from pathlib import Path

import pytest

from tinyadapt.engine.host import HostEngine, HostTrainer
from tinyadapt.errors import EngineError

BLOB = Path(__file__).parent / "data" / "train_kept_list_is_a_trained_bias.bin"


def test_inference_still_runs_the_blob():
    HostEngine(BLOB.read_bytes())


def test_a_trained_bias_that_is_also_the_kept_list_is_refused():
    with pytest.raises(EngineError, match="trainer rejected the model: TA_ERR_CORRUPT"):
        HostTrainer(BLOB.read_bytes())
