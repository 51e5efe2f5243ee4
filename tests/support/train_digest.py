"""Prints the SHA-256 of the parameter image after 30 mixed training steps (both losses) on the
block model of tests/test_train.py: run under different compilers to compare their bits."""
import hashlib, numpy as np, sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from tinyadapt.convert import convert
from tinyadapt.train.graph import build_training
from tinyadapt.train.scheme import UpdateScheme
from tinyadapt.engine.host import HostTrainer
from tests.support.tiny_models import tiny_cnn as block_model
plan = build_training(convert(block_model()), UpdateScheme.full(4))
tr = HostTrainer(plan.blob)
rng = np.random.default_rng(0)
for k in range(30):
    tr.step(rng.integers(-128, 128, (1, 8, 8, 2)).astype(np.int8), k % 5, 0.05, "entropy" if k % 3 == 0 else "cross_entropy")
print(hashlib.sha256(tr.params()).hexdigest())
