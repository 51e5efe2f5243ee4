"""Reading input arrays and writing output files: one-line errors, atomic writes.

A failed command never destroys an existing file: outputs go to a temporary file beside the
target, which is renamed over it only once complete. The result gets the permissions any
new file would get (0666 less the umask), not mkstemp's private 0600.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tinyadapt.errors import InputError, TinyAdaptError

NPY_MAGIC = b"\x93NUMPY"
NPZ_MAGIC = b"PK\x03\x04"


def check_output_path(path: str | Path) -> Path:
    """Fail early, before any work, when `path` cannot be written: its folder is missing (it
    is not created: a typo in a folder name should not silently make a new tree)."""
    path = Path(path)
    parent = path.parent
    if not parent.exists():
        raise TinyAdaptError(f"cannot write {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise TinyAdaptError(f"cannot write {path}: {parent} is not a folder")
    if path.is_dir():
        raise TinyAdaptError(f"cannot write {path}: it is a folder")
    return path


def _umask() -> int:
    mask = os.umask(0)   # the only portable way to read it; set straight back
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes | str, *, fsync: bool = False) -> None:
    path = check_output_path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise TinyAdaptError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_save_npy(path: str | Path, arrays) -> None:
    import io

    import numpy as np

    buf = io.BytesIO()
    if str(path).endswith(".npz"):
        np.savez(buf, **arrays)
    else:
        np.save(buf, arrays)
    atomic_write(path, buf.getvalue())


def load_npy(path: str | Path, what: str = "input"):
    """One array from a .npy file, or a one-line InputError naming what is wrong with it."""
    import numpy as np

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except FileNotFoundError:
        raise InputError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} file {path} is a folder") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(NPZ_MAGIC):
        raise InputError(f"{path} is an .npz archive; pass one .npy array per model input")
    if head != NPY_MAGIC:
        raise InputError(f"{path} is not a NumPy .npy file (it does not start with the .npy magic bytes; "
                         "write it with numpy.save)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError(f"{path} holds Python objects, not a numeric array") from None
        raise InputError(f"cannot read {path} as a .npy array: {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path} as a .npy array: {exc}") from None
