"""Build and convert a random-weight MobileNetV2 (alpha 0.35, 96x96x3), full int8.

Run with a TensorFlow environment (not the project venv):
    pip install tensorflow-cpu==2.21.0 scikit-learn pyts
    python models/mobilenetv2/make.py

Outputs (next to this file): mobilenetv2_96.tflite, mobilenetv2_96_sample.npz.
The weights are random (Keras' default initialisers, fixed seed) and the
quantization ranges come from a representative dataset of seeded uniform
noise images in [-1, 1] (the MobileNetV2 input range).

With untrained BatchNorm statistics (mean 0, variance 1) the activations of a
random MobileNetV2 shrink layer after layer (quantization scales fall to
~1e-8 by the last blocks, everything is zero, and the SOFTMAX input scale is
so small that TFLite Micro's softmax Prepare aborts in
QuantizeMultiplierGreaterThanOne). So the BatchNorm moving mean / variance of
each layer are set, in topological order, to the statistics of that layer's
input on the noise images ("data-dependent init"): every BatchNorm output is
then roughly zero-mean, unit-variance and all activations stay in range. The model's outputs are
meaningless as a classifier; it exists to exercise memory planning, PAD,
depthwise convolutions and residual ADDs at a realistic size.
"""
import os
import random
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf

SEED = 1234
HERE = os.path.dirname(os.path.abspath(__file__))
SHAPE = (96, 96, 3)
N_REP = 64
N_SAMPLE = 4

random.seed(SEED)
np.random.seed(SEED)
tf.keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()


def calibrate_batchnorm(model, x):
    """Set each BatchNorm's moving statistics to those of its input on x."""
    for layer in model.layers:
        if not isinstance(layer, tf.keras.layers.BatchNormalization):
            continue
        probe = tf.keras.Model(model.input, layer.input)
        a = probe.predict(x, batch_size=16, verbose=0).astype(np.float64)
        axes = tuple(range(a.ndim - 1))
        mean = a.mean(axis=axes)
        var = a.var(axis=axes)
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, mean.astype(np.float32),
                           var.astype(np.float32)])


def main():
    model = tf.keras.applications.MobileNetV2(
        input_shape=SHAPE, alpha=0.35, weights=None, classes=10,
        classifier_activation="softmax")
    rng = np.random.default_rng(SEED)
    rep_x = rng.uniform(-1.0, 1.0, size=(N_REP, 1) + SHAPE).astype(np.float32)
    sample_x = rng.uniform(-1.0, 1.0, size=(N_SAMPLE,) + SHAPE).astype(np.float32)
    calibrate_batchnorm(model, rep_x[:, 0])

    tmp = tempfile.mkdtemp()
    try:
        model.export(tmp, format="tf_saved_model",
                     input_signature=[tf.TensorSpec((1,) + SHAPE, tf.float32)])
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

        def rep():
            for x in rep_x:
                yield [x]

        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        tfl = conv.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    path = os.path.join(HERE, "mobilenetv2_96.tflite")
    with open(path, "wb") as f:
        f.write(tfl)

    interp = tf.lite.Interpreter(model_content=tfl)
    scale, zp = interp.get_input_details()[0]["quantization"]
    xq = np.clip(np.round(sample_x / scale) + zp, -128, 127).astype(np.int8)
    # int8 only: noise does not compress, and float copies would double the size.
    np.savez_compressed(os.path.join(HERE, "mobilenetv2_96_sample.npz"), x=xq)
    print(f"wrote {path} ({len(tfl)} bytes), input scale={scale} zp={zp}")


if __name__ == "__main__":
    main()
