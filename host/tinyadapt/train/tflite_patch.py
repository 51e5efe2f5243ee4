"""The adapted model as a standard int8 .tflite: a copy of the original flatbuffer in which the
updated weights and biases replace the bytes of their buffers (same sizes, same quantization),
so TFLite Micro and `tinyadapt run` run the model exactly as the trainer left it."""

from __future__ import annotations

import flatbuffers
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinyadapt.convert.blob import read_blob
from tinyadapt.errors import TinyAdaptError
from tinyadapt.train.graph import TrainPlan
from tinyadapt.train.params import param_slots


def _buffer_span(model, tensor_index: int) -> tuple[int, int]:
    t = model.Subgraphs(0).Tensors(tensor_index)
    buf = model.Buffers(t.Buffer())
    o = flatbuffers.number_types.UOffsetTFlags.py_type(buf._tab.Offset(4))
    if o == 0:
        raise TinyAdaptError(f"tensor {tensor_index} keeps its data outside the flatbuffer: cannot patch it")
    return buf._tab.Vector(o), buf._tab.VectorLen(o)


def patched_tflite(tflite: bytes, plan: TrainPlan, image: bytes) -> bytes:
    """`tflite` with every updated parameter of `plan` taken from the parameter image."""
    out = bytearray(tflite)
    model = schema.Model.GetRootAsModel(tflite, 0)
    info = read_blob(plan.blob)
    slots, size, _ = param_slots(info, plan.blob)
    if len(image) != size:
        raise TinyAdaptError(f"parameter image of {len(image)} bytes, the plan's is {size}")
    for s in slots:
        for blob_index, data in ((s.filter, s.weights(image).tobytes() if s.master_at is not None else None),
                                 (s.bias, s.biases(image).tobytes() if s.bias_master_at is not None else None)):
            if data is None:
                continue
            ir_index = plan.tensors[blob_index].source
            start, n = _buffer_span(model, ir_index)
            if n != len(data):
                raise TinyAdaptError(f"tensor {ir_index}: buffer holds {n} bytes, the update {len(data)}")
            out[start:start + n] = data
    return bytes(out)
