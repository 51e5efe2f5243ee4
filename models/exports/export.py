"""Export the int8 models that converters really produce, for tinyadapt's patch-based tests.

A dev-time script: TensorFlow is never a dependency of tinyadapt or of its tests. It runs in
its own venv, made once:

    python3.11 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.15.1 'numpy<2'
    /work/tfvenv/bin/python models/exports/export.py            # all models
    /work/tfvenv/bin/python models/exports/export.py mnv2_035_128  # one

It writes models/exports/<name>.tflite and the table in models/exports/README.md.

Every model goes through TFLiteConverter's full-int8 path (Optimize.DEFAULT, a representative
dataset, TFLITE_BUILTINS_INT8, int8 input (uint8 for the *_u8 variants) and output) from a concrete function with a fixed
batch-1 signature, so the graphs are exactly what a user gets: explicit PADs before stride-2
depthwise convs (Keras' "correct_pad"), MEAN as global pooling, HARD_SWISH, squeeze-and-excite
MULs, and for the PyTorch-layout graphs an NCHW input with a leading TRANSPOSE and symmetric PADs.

Weights are random (Keras' initialisers, fixed seed). With untrained BatchNorm statistics the
activations of a deep random net collapse or explode, so each BatchNorm's moving mean and
variance are set, in topological order, to the statistics of its input on the representative
images, and gamma/beta get a little seeded jitter: the outputs then vary from input to input.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 2026
N_REP = 24
layers = tf.keras.layers


def images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Smooth random images in [-1, 1] (low-resolution noise upsampled), MobileNet's input range:
    spatially correlated like real pictures, so deep activations do not average out."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    coarse = rng.uniform(-1, 1, size=(n, max(h // 8, 2), max(w // 8, 2), c)).astype(np.float32)
    smooth = tf.image.resize(coarse, (h, w), method="bilinear").numpy()
    fine = rng.uniform(-0.25, 0.25, size=(n, h, w, c)).astype(np.float32)
    return np.clip(smooth + fine, -1, 1)


def calibrate_batchnorm(model: tf.keras.Model, x: np.ndarray, seed: int) -> None:
    """Each BatchNorm's moving statistics := those of its input on x (in topological order, so
    each layer sees already-calibrated inputs); gamma and beta jittered so channels differ."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        probe = tf.keras.Model(model.inputs, layer.input)
        a = probe.predict(x, batch_size=8, verbose=0).astype(np.float64)
        axes = tuple(range(a.ndim - 1))
        gamma, beta, _, _ = layer.get_weights()
        gamma = gamma * rng.uniform(0.6, 1.4, size=gamma.shape)
        beta = beta + rng.normal(0.0, 0.3, size=beta.shape)
        layer.set_weights([gamma.astype(np.float32), beta.astype(np.float32),
                           a.mean(axis=axes).astype(np.float32), a.var(axis=axes).astype(np.float32)])


def to_int8_tflite(model: tf.keras.Model, rep: np.ndarray, input_type=tf.int8) -> bytes:
    """input_type tf.uint8 is what a camera pipeline feeds: the converter then starts the graph
    with QUANTIZE uint8 -> int8 (same scale, zero point + 128)."""
    spec = tf.TensorSpec((1,) + tuple(model.input_shape[1:]), tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[None]] for x in rep)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = input_type
    conv.inference_output_type = tf.int8
    return conv.convert()


# -- PyTorch-layout graphs (what a torch -> TFLite export looks like) ------------------------------

def _torch_conv(x, filters, kernel, stride, name, act=True):
    """nn.Conv2d(padding=k//2) + BN + ReLU6: an explicit symmetric PAD, then a VALID conv."""
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel, stride, "valid", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if act else x


def _torch_dw(x, stride, name):
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = layers.DepthwiseConv2D(3, stride, "valid", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def _torch_block(x, expand, out_ch, stride, name):
    in_ch = x.shape[-1]
    y = _torch_conv(x, in_ch * expand, 1, 1, f"{name}_expand") if expand != 1 else x
    y = _torch_dw(y, stride, f"{name}_dw")
    y = _torch_conv(y, out_ch, 1, 1, f"{name}_project", act=False)
    return layers.Add(name=f"{name}_add")([x, y]) if stride == 1 and in_ch == out_ch else y


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


MNV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1)]


def torch_mobilenetv2(size: int, width: float, classes: int, settings=MNV2_SETTINGS) -> tf.keras.Model:
    """torchvision's MobileNetV2 as a torch -> TFLite export lays it out: NCHW input (one
    TRANSPOSE), a PAD(1,1) before every 3x3 conv, VALID convs, MEAN, FC."""
    inp = layers.Input((3, size, size), batch_size=1, name="image_nchw")
    x = layers.Permute((2, 3, 1), name="to_nhwc")(inp)
    x = _torch_conv(x, _make_divisible(32 * width), 3, 2, "stem")
    for i, (t, c, n, s) in enumerate(settings):
        for j in range(n):
            x = _torch_block(x, t, _make_divisible(c * width), s if j == 0 else 1, f"b{i}_{j}")
    x = _torch_conv(x, _make_divisible(1280 * max(1.0, width)), 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return tf.keras.Model(inp, layers.Dense(classes, name="fc")(x), name=f"torch_mobilenetv2_{width}_{size}")


def torch_edge_mix(size: int = 64) -> tf.keras.Model:
    """A small PyTorch-layout graph with the edge cases converters emit around PAD: a ResNet-style
    stem (PAD before MAX_POOL; after ReLU the pad value is -128), inverted residual blocks, a
    channel CONCATENATION of two branches, a PAD feeding an AVERAGE_POOL (not foldable: TFLM
    averages over the valid pixels only) and a PAD read by two ops."""
    inp = layers.Input((3, size, size), batch_size=1, name="image_nchw")
    x = layers.Permute((2, 3, 1), name="to_nhwc")(inp)
    x = _torch_conv(x, 16, 3, 2, "stem")
    x = layers.ZeroPadding2D(1, name="pool_pad")(x)
    x = layers.MaxPooling2D(3, 2, "valid", name="maxpool")(x)
    x = _torch_block(x, 4, 16, 1, "b0")
    x = _torch_block(x, 4, 24, 2, "b1")
    a = _torch_conv(x, 16, 1, 1, "branch_a")
    b = _torch_conv(x, 16, 3, 1, "branch_b")
    x = layers.Concatenate(axis=-1, name="concat")([a, b])
    shared = layers.ZeroPadding2D(1, name="shared_pad")(x)
    p = layers.AveragePooling2D(3, 1, "valid", name="avgpool")(shared)
    q = layers.DepthwiseConv2D(3, 1, "valid", use_bias=False, name="shared_dw")(shared)
    q = layers.BatchNormalization(name="shared_dw_bn")(q)
    x = layers.Add(name="mix")([p, q])
    x = _torch_block(x, 4, 32, 2, "b2")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return tf.keras.Model(inp, layers.Dense(10, name="fc")(x), name="torch_edge_mix")


# -- Keras applications --------------------------------------------------------------------------

def keras_mnv2(alpha: float, size: int) -> tf.keras.Model:
    return tf.keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None, classes=10)


def keras_mnv3(large: bool, minimalistic: bool, alpha: float, size: int, top: bool) -> tf.keras.Model:
    """top=False keeps the backbone and adds GAP + Dense(10): the 1024/1280-wide last layer of
    Keras' head alone is ~1 M weights, which the tests do not need."""
    cls = tf.keras.applications.MobileNetV3Large if large else tf.keras.applications.MobileNetV3Small
    kw = dict(input_shape=(size, size, 3), alpha=alpha, minimalistic=minimalistic, weights=None)
    if top:
        return cls(classes=10, **kw)
    base = cls(include_top=False, **kw)
    x = layers.GlobalAveragePooling2D(name="gap")(base.output)
    return tf.keras.Model(base.input, layers.Dense(10, name="fc")(x), name=base.name + "_gap10")


def keras_mnv1(alpha: float, size: int, channels: int, classes: int) -> tf.keras.Model:
    """TFLM's person_detect architecture (MobileNetV1-0.25, 96x96 grayscale, 2 classes) as Keras
    builds it: ZeroPadding2D before each stride-2 conv (PADs), GAP as MEAN, a 1x1 conv head."""
    return tf.keras.applications.MobileNet(input_shape=(size, size, channels), alpha=alpha, weights=None,
                                           classes=classes)


MODELS = {
    "mnv2_035_128": ("Keras MobileNetV2 alpha 0.35, 128x128, 10 classes", lambda: keras_mnv2(0.35, 128)),
    "mnv2_050_96": ("Keras MobileNetV2 alpha 0.5, 96x96, 10 classes", lambda: keras_mnv2(0.5, 96)),
    "mnv3s_min_96": ("Keras MobileNetV3-Small minimalistic, 96x96, Keras head",
                     lambda: keras_mnv3(False, True, 1.0, 96, top=True)),
    "mnv3s_96": ("Keras MobileNetV3-Small (SE, HARD_SWISH), 96x96, Keras head",
                 lambda: keras_mnv3(False, False, 1.0, 96, top=True)),
    "mnv3l_075_96": ("Keras MobileNetV3-Large alpha 0.75 (SE, HARD_SWISH), 96x96, GAP + FC",
                     lambda: keras_mnv3(True, False, 0.75, 96, top=False)),
    "mnv3l_min_050_96": ("Keras MobileNetV3-Large minimalistic alpha 0.5, 96x96, GAP + FC",
                         lambda: keras_mnv3(True, True, 0.5, 96, top=False)),
    "torch_mix_64": ("PyTorch layout: NCHW, TRANSPOSE, PAD before conv/max-pool/avg-pool, concat, 64x64",
                     lambda: torch_edge_mix(64)),
    "torch_mnv2_100_224": ("PyTorch layout MobileNetV2 width 1.0, 224x224, 10 classes",
                           lambda: torch_mobilenetv2(224, 1.0, 10)),
    "person_mnv1_025_96": ("Keras MobileNetV1 alpha 0.25, 96x96 grayscale, 2 classes (person_detect's architecture)",
                           lambda: keras_mnv1(0.25, 96, 1, 2)),
    "person_mnv1_025_96_u8": ("the same, uint8 input (QUANTIZE uint8 -> int8 first, as a camera feeds it)",
                              lambda: keras_mnv1(0.25, 96, 1, 2), tf.uint8),
}


def export(name: str) -> dict:
    what, build, *rest = MODELS[name]
    input_type = rest[0] if rest else tf.int8
    tf.keras.utils.set_random_seed(SEED)
    model = build()
    shape = tuple(model.input_shape[1:])
    nchw = shape[0] == 3 and shape[1] > 3
    hwc = (shape[1], shape[2], shape[0]) if nchw else shape
    rep = images(N_REP, hwc, SEED)
    if nchw:
        rep = np.ascontiguousarray(rep.transpose(0, 3, 1, 2))
    calibrate_batchnorm(model, rep, SEED)
    data = to_int8_tflite(model, rep, input_type)
    path = os.path.join(HERE, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(data)
    interp = tf.lite.Interpreter(model_content=data)
    ops: dict[str, int] = {}
    for d in interp._get_ops_details():  # noqa: SLF001 (no public op listing in TF 2.15)
        ops[d["op_name"]] = ops.get(d["op_name"], 0) + 1
    inp = interp.get_input_details()[0]
    return {"name": name, "what": what, "bytes": len(data), "params": model.count_params(),
            "input": f"{np.dtype(inp['dtype']).name} {list(inp['shape'])}", "ops": ops}


def _table_row(r: dict) -> str:
    ops = ", ".join(f"{k} x{v}" for k, v in sorted(r["ops"].items()))
    return f"| `{r['name']}.tflite` | {r['what']} | {r['input']} | {r['params']:,} | {r['bytes']:,} | {ops} |"


def write_readme(rows: list[dict]) -> None:
    """The table keeps the rows of models not exported this run (MODELS order)."""
    path = os.path.join(HERE, "README.md")
    lines_by_name = {}
    if os.path.exists(path):
        for line in open(path).read().splitlines():
            if line.startswith("| `") and ".tflite`" in line:
                lines_by_name[line.split("`")[1][:-len(".tflite")]] = line
    lines_by_name.update({r["name"]: _table_row(r) for r in rows})
    lines = ["# Real exports: what TFLiteConverter makes of Keras and PyTorch-layout models", "",
             "Made by `export.py` (see its docstring for the TensorFlow venv; TensorFlow is not a",
             "dependency of tinyadapt or of its tests). Random weights with recalibrated BatchNorm",
             "statistics, full-int8 (int8 input, uint8 for `*_u8`, and int8 output), batch 1. The tests",
             "(`tests/test_exports.py`) run each layer by layer bit-exact against TensorFlow Lite Micro,",
             "and patch plans spread over its splits (tiles and streamed row bands) and budgets equal to",
             "layer by layer. Their peak SRAM next to TFLite Micro's arena, patch-based and measured on",
             "QEMU: `.venv/bin/python benchmarks/patch.py --models mnv2_035_128 torch_mnv2_100_224 mnv3s_min_96 person_mnv1`.",
             "",
             "| file | model | input | params | size (bytes) | ops |", "|---|---|---|---:|---:|---|"]
    lines += [lines_by_name[n] for n in MODELS if n in lines_by_name]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    names = argv or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        row = export(name)
        print(f"{name}: {row['bytes']:,} bytes, {row['params']:,} params, {row['input']}", flush=True)
        rows.append(row)
    write_readme(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
