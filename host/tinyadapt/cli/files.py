"""Writing output files atomically, so a failed command never destroys an existing file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tinyadapt.errors import TinyAdaptError


def atomic_write(path: str | Path, data: bytes | str) -> None:
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise TinyAdaptError(f"cannot write {path}: {exc.strerror or exc}") from None


def atomic_save_npy(path: str | Path, arrays) -> None:
    import io

    import numpy as np

    buf = io.BytesIO()
    if str(path).endswith(".npz"):
        np.savez(buf, **arrays)
    else:
        np.save(buf, arrays)
    atomic_write(path, buf.getvalue())
