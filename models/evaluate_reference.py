"""Evaluate the committed models with the two reference interpreters.

Run in the project venv (numpy<2, tflite-runtime==2.14.0, tflite-micro):
    .venv/bin/python models/evaluate_reference.py

For every model and every held-out sample, the TFLite Micro Python runtime
and tflite-runtime 2.14 (BUILTIN_REF op resolver, i.e. the reference
kernels) must produce identical output tensors; the script asserts that and
prints a markdown table of size and accuracy. MobileNetV2 has random weights,
so it has no accuracy: only agreement on its sample inputs is checked.
"""
import ctypes
import os
import re
import sys
import tempfile

import numpy as np
import tflite_runtime.interpreter as tflrt
from tflite_micro import runtime as tflm

HERE = os.path.dirname(os.path.abspath(__file__))

MODELS = [
    # name, model path, data path, arena size for TFLM (bytes)
    ("digits", "digits/digits_cnn.tflite", "digits/digits_test.npz", 64 * 1024),
    ("basicmotions", "basicmotions/basicmotions_imu.tflite",
     "basicmotions/basicmotions_test.npz", 64 * 1024),
    ("mobilenetv2", "mobilenetv2/mobilenetv2_96.tflite",
     "mobilenetv2/mobilenetv2_96_sample.npz", 1024 * 1024),
]


def tflm_arena_usage(interp):
    """(head, total) arena bytes from TFLM's RecordingMicroAllocator report.

    print_allocations() writes through TFLM's DebugLog to the C stderr, so
    capture file descriptor 2.
    The head is the planned (non-persistent) activation memory; the total
    adds TFLM's persistent bookkeeping (tail).
    """
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    libc.fflush(None)
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as f:
        os.dup2(f.fileno(), 2)
        try:
            interp.print_allocations()
            libc.fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
    head = re.search(r"allocation head (\d+) bytes", text)
    total = re.search(r"allocation total (\d+) bytes", text)
    return (int(head.group(1)) if head else None,
            int(total.group(1)) if total else None)


def run_tflm(path, arena, xs):
    interp = tflm.Interpreter.from_file(path, arena_size=arena)
    outs = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0), copy=True))
    return np.concatenate(outs), tflm_arena_usage(interp)


def run_tflite(path, xs):
    interp = tflrt.Interpreter(
        model_path=path,
        experimental_op_resolver_type=tflrt.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    outs = []
    for x in xs:
        interp.set_tensor(inp, x[None])
        interp.invoke()
        outs.append(interp.get_tensor(out).copy())
    return np.concatenate(outs)


def main():
    rows = []
    ok = True
    for name, mpath, dpath, arena in MODELS:
        mpath = os.path.join(HERE, mpath)
        data = np.load(os.path.join(HERE, dpath))
        xs = data["x"]
        y_micro, (head, total) = run_tflm(mpath, arena, xs)
        y_lite = run_tflite(mpath, xs)
        same = y_micro.dtype == y_lite.dtype and np.array_equal(y_micro, y_lite)
        if not same:
            ok = False
            diff = np.abs(y_micro.astype(np.float64) - y_lite.astype(np.float64))
            print(f"{name}: MISMATCH between TFLM and tflite-runtime "
                  f"(max abs diff {diff.max()}, {np.count_nonzero(diff)} elements)",
                  file=sys.stderr)
        if "y" in data:
            acc_micro = np.mean(np.argmax(y_micro, axis=1) == data["y"])
            acc_lite = np.mean(np.argmax(y_lite, axis=1) == data["y"])
            acc_m = f"{100 * acc_micro:.2f} %"
            acc_l = f"{100 * acc_lite:.2f} %"
        else:
            acc_m = acc_l = "n/a (random weights)"
        rows.append((name, os.path.getsize(mpath), len(xs), str(xs.dtype),
                     list(xs.shape[1:]), str(y_micro.dtype), acc_m, acc_l,
                     "yes" if same else "NO", head, total))

    print("| model | size (bytes) | N | input | output | TFLM accuracy "
          "| tflite-runtime accuracy | outputs identical "
          "| TFLM arena head / total (bytes) |")
    print("|---|---:|---:|---|---|---:|---:|---|---:|")
    for (name, size, n, idt, ishape, odt, am, al, same, head, total) in rows:
        print(f"| {name} | {size} | {n} | {idt} {ishape} | {odt} | {am} | {al} "
              f"| {same} | {head} / {total} |")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
