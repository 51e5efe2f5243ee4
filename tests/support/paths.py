"""Where the tests find models: the repo's own, and the real public TFLite Micro models in
../shared/models (beside the clone in CI; TINYADAPT_SHARED_MODELS overrides)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = Path(os.environ.get("TINYADAPT_SHARED_MODELS", REPO.parent / "shared" / "models"))


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} not found: the public TFLite Micro models live in ../shared/models "
                    "(or set TINYADAPT_SHARED_MODELS)")
    return path
