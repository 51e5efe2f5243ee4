"""Read a .tflite flatbuffer into the converter's IR.

Uses TFLite Micro's generated schema (schema_py_generated) through its accessor API.
The file is untrusted: the whole flatbuffer is verified first (flatbuffer_verify.py: every
offset, vector, string and table in bounds), every vector length is checked against the file
size before it is read, and any decoding failure becomes a one-line ModelFileError naming
what was being read.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinyadapt.convert.flatbuffer_verify import verify_tflite
from tinyadapt.convert.ir import Graph, Op, Tensor
from tinyadapt.errors import ModelFileError

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
_TENSOR_TYPES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_NUMPY_TYPES = {
    "FLOAT32": np.float32, "INT32": np.int32, "UINT8": np.uint8, "INT64": np.int64,
    "BOOL": np.bool_, "INT16": np.int16, "INT8": np.int8, "FLOAT16": np.float16,
    "FLOAT64": np.float64, "UINT32": np.uint32, "UINT16": np.uint16,
}


def op_name(code: int) -> str:
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class _Reader:
    def __init__(self, buf: bytes, source: str):
        self.buf = buf
        self.source = source
        self.what = "header"

    def fail(self, message: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: {message}")

    def length(self, n: int, item_size: int, what: str) -> int:
        if n < 0 or n * item_size > len(self.buf):
            raise self.fail(f"corrupt flatbuffer: {what} claims {n} entries, more than the "
                            f"file's {len(self.buf)} bytes can hold")
        return n

    def read(self) -> Graph:
        buf = self.buf
        if len(buf) < 8:
            raise self.fail(f"not a .tflite model: only {len(buf)} bytes")
        if buf[4:8] != b"TFL3":
            raise self.fail(f"not a .tflite model: file identifier at offset 4 is {bytes(buf[4:8])!r}, "
                            "expected b'TFL3'")
        verify_tflite(buf, self.source)
        try:
            return self._read_model(schema.Model.GetRootAs(buf, 0))
        except ModelFileError:
            raise
        except Exception as exc:  # the generated accessors raise struct/index errors on corrupt data
            raise self.fail(f"corrupt or truncated flatbuffer while reading {self.what}: "
                            f"{type(exc).__name__}: {exc}") from None

    def _read_model(self, model) -> Graph:
        self.what = "subgraphs"
        if self.length(model.SubgraphsLength(), 4, "subgraphs") < 1:
            raise self.fail("model has no subgraph")
        sg = model.Subgraphs(0)
        n_buffers = self.length(model.BuffersLength(), 4, "buffers")
        n_codes = self.length(model.OperatorCodesLength(), 4, "operator codes")
        codes = []
        for i in range(n_codes):
            self.what = f"operator code {i}"
            oc = model.OperatorCodes(i)
            codes.append(max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode())))

        tensors = []
        for i in range(self.length(sg.TensorsLength(), 4, "tensors")):
            self.what = f"tensor {i}"
            tensors.append(self._read_tensor(model, sg.Tensors(i), i, n_buffers))

        ops = []
        for i in range(self.length(sg.OperatorsLength(), 4, "operators")):
            self.what = f"operator {i}"
            ops.append(self._read_op(sg.Operators(i), i, codes, len(tensors)))

        self.what = "subgraph inputs/outputs"
        inputs = self._indices(sg.InputsAsNumpy() if sg.InputsLength() else [], len(tensors), "subgraph inputs")
        outputs = self._indices(sg.OutputsAsNumpy() if sg.OutputsLength() else [], len(tensors), "subgraph outputs")
        if not inputs or not outputs:
            raise self.fail("subgraph has no inputs or no outputs")
        name = sg.Name().decode("utf-8", "replace") if sg.Name() else ""
        return Graph(tensors=tensors, ops=ops, inputs=inputs, outputs=outputs, name=name)

    def _indices(self, values, n_tensors: int, what: str, allow_absent: bool = False) -> list[int]:
        out = []
        for v in values:
            v = int(v)
            if (v == -1 and allow_absent) or 0 <= v < n_tensors:
                out.append(v)
            else:
                raise self.fail(f"corrupt flatbuffer: {what} refer to tensor {v}, "
                                f"but the model has {n_tensors} tensors")
        return out

    def _read_tensor(self, model, t, index: int, n_buffers: int) -> Tensor:
        name = t.Name().decode("utf-8", "replace") if t.Name() else f"t{index}"
        type_name = _TENSOR_TYPES.get(t.Type(), f"TYPE_{t.Type()}")
        dtype = _NUMPY_TYPES.get(type_name)
        shape = tuple(int(d) for d in (t.ShapeAsNumpy() if self.length(t.ShapeLength(), 4, "shape") else []))
        if any(d < 0 for d in shape):
            sig = "dynamic" if any(d == -1 for d in shape) else "negative"
            raise self.fail(f"tensor {index} '{name}' has a {sig} dimension {list(shape)}")
        scale = zero_point = None
        qdim = 0
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            self.length(q.ScaleLength(), 4, f"tensor {index} scales")
            self.length(q.ZeroPointLength(), 8, f"tensor {index} zero points")
            scale = np.array(q.ScaleAsNumpy(), dtype=np.float32)
            zero_point = (np.array(q.ZeroPointAsNumpy(), dtype=np.int64) if q.ZeroPointLength()
                          else np.zeros(len(scale), np.int64))
            qdim = int(q.QuantizedDimension())
            if not np.all(np.isfinite(scale)):
                raise self.fail(f"tensor {index} '{name}' has a quantization scale that is not a finite number")
            if zero_point.size and (zero_point.min() < -2**31 or zero_point.max() >= 2**31):
                raise self.fail(f"tensor {index} '{name}' has a zero point outside the int32 range "
                                f"({int(zero_point.min())} .. {int(zero_point.max())})")
        data = None
        b = int(t.Buffer())
        if not 0 <= b < n_buffers:
            raise self.fail(f"tensor {index} '{name}' refers to buffer {b}, the model has {n_buffers}")
        raw = self._buffer_bytes(model.Buffers(b), b)
        if raw is not None and len(raw) > 0:
            if dtype is None:
                raise self.fail(f"tensor {index} '{name}' has unsupported type {type_name}")
            count = int(np.prod(shape, dtype=np.int64))
            need = count * np.dtype(dtype).itemsize
            if len(raw) != need:
                raise self.fail(f"tensor {index} '{name}': buffer {b} holds {len(raw)} bytes, "
                                f"shape {list(shape)} of {type_name} needs {need}")
            data = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        return Tensor(index=index, name=name, shape=shape,
                      dtype=np.dtype(dtype) if dtype is not None else type_name,
                      scale=scale, zero_point=zero_point, quantized_dimension=qdim, data=data)

    def _buffer_bytes(self, buffer, b: int) -> bytes | None:
        if buffer is None:
            return None
        offset = int(buffer.Offset()) if hasattr(buffer, "Offset") else 0
        if offset > 1:  # data stored after the flatbuffer (models > 2 GB)
            size = int(buffer.Size())
            if offset + size > len(self.buf):
                raise self.fail(f"truncated: buffer {b} data at offset {offset}+{size} is past the end "
                                f"({len(self.buf)} bytes)")
            return bytes(self.buf[offset:offset + size])
        n = buffer.DataLength()
        if n == 0:
            return None
        self.length(n, 1, f"buffer {b}")
        return buffer.DataAsNumpy().tobytes()

    def _read_op(self, op, index: int, codes: list[int], n_tensors: int) -> Op:
        ci = int(op.OpcodeIndex())
        if not 0 <= ci < len(codes):
            raise self.fail(f"operator {index} uses opcode index {ci}, the model has {len(codes)} codes")
        kind = op_name(codes[ci])
        ins = self._indices(op.InputsAsNumpy() if self.length(op.InputsLength(), 4, "op inputs") else [],
                            n_tensors, f"operator {index} ({kind}) inputs", allow_absent=True)
        outs = self._indices(op.OutputsAsNumpy() if self.length(op.OutputsLength(), 4, "op outputs") else [],
                             n_tensors, f"operator {index} ({kind}) outputs")
        options = {}
        if op.BuiltinOptionsType() != 0 and op.BuiltinOptions() is not None:
            obj = schema.BuiltinOptionsCreator(op.BuiltinOptionsType(), op.BuiltinOptions())
            for key, value in vars(obj).items():
                options[_snake(key)] = value
        if "fused_activation_function" in options:
            code = options["fused_activation_function"]
            if code not in _ACTIVATIONS:
                raise self.fail(f"operator {index} ({kind}) has an unknown fused activation function {code}")
            options["activation"] = _ACTIVATIONS[code]
        if "padding" in options:
            if options["padding"] not in _PADDINGS:
                raise self.fail(f"operator {index} ({kind}) has an unknown padding {options['padding']}")
            options["padding"] = _PADDINGS[options["padding"]]
        return Op(index=index, kind=kind, inputs=ins, outputs=outs, options=options)


def read_tflite(source: str | Path | bytes, name: str | None = None) -> Graph:
    """Parse a .tflite file (path) or buffer (bytes) into a Graph."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _Reader(bytes(source), name or "<model>").read()
    path = Path(source)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _Reader(buf, str(path)).read()
