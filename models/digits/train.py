"""Train and convert the 8x8 digits CNN (full int8, int8 input and output).

Run with a TensorFlow environment (not the project venv):
    pip install tensorflow-cpu==2.21.0 scikit-learn pyts
    python models/digits/train.py

Outputs (next to this file): digits_cnn.tflite, digits_test.npz.
Data: scikit-learn load_digits() (a copy of the UCI "Optical Recognition of
Handwritten Digits" test set, shipped with scikit-learn; no download).
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
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 1234
HERE = os.path.dirname(os.path.abspath(__file__))

random.seed(SEED)
np.random.seed(SEED)
tf.keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)


def build_model():
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(8, 8, 1), batch_size=1, name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(32, activation="relu")(x)
    x = L.Dense(10)(x)
    out = L.Softmax()(x)
    return tf.keras.Model(inp, out)


def main():
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]  # [N,8,8,1] in [0,1]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=SEED)

    model = build_model()
    # The exported model has a fixed batch of 1; train through a wrapper
    # with a free batch dimension (shares the same layers/weights).
    train_in = tf.keras.Input(shape=(8, 8, 1))
    train_model = tf.keras.Model(train_in, model(train_in))
    train_model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                        loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train_model.fit(x_tr, y_tr, batch_size=32, epochs=60, shuffle=True, verbose=2)
    _, acc = train_model.evaluate(x_te, y_te, verbose=0)
    print(f"float test accuracy: {acc:.4f}")

    tmp = tempfile.mkdtemp()
    try:
        model.export(tmp, format="tf_saved_model",
                     input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

        def rep():
            for i in range(len(x_tr)):
                yield [x_tr[i:i + 1]]

        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        tfl = conv.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    path = os.path.join(HERE, "digits_cnn.tflite")
    with open(path, "wb") as f:
        f.write(tfl)

    interp = tf.lite.Interpreter(model_content=tfl)
    inp = interp.get_input_details()[0]
    scale, zp = inp["quantization"]
    xq = np.clip(np.round(x_te / scale) + zp, -128, 127).astype(np.int8)
    np.savez_compressed(os.path.join(HERE, "digits_test.npz"),
                        x=xq, x_float=x_te.astype(np.float32), y=y_te)
    print(f"wrote {path} ({len(tfl)} bytes), input scale={scale} zp={zp}, "
          f"test N={len(y_te)}")


if __name__ == "__main__":
    main()
