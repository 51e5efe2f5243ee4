"""Write small .tflite models directly as flatbuffers, without TensorFlow (the TTA exit heads,
and the tests' generated models).

Uses the object API of TFLM's generated schema. Example::

    b = ModelBuilder()
    x = b.input([1, 8, 8, 3], scale=0.05, zero_point=-3)
    w = b.const(w_int8, scale=w_scales, quantized_dimension=0)   # per-channel
    bias = b.const(bias_int32, scale=0.05 * w_scales)
    y = b.tensor([1, 8, 8, 4], scale=0.1, zero_point=5)
    b.op("CONV_2D", [x, w, bias], [y], padding="SAME", activation="RELU")
    b.output(y)
    model_bytes = b.build()

Conventions: model version 3, buffer 0 is the empty sentinel buffer and every
non-constant tensor points at it, each constant gets its own buffer. An input
index of -1 means "no tensor" (optional operand, e.g. FULLY_CONNECTED without
bias).
"""

from __future__ import annotations

from typing import Callable, Sequence

import flatbuffers
import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

__all__ = ["ModelBuilder", "quantize", "pack_model", "ACTIVATIONS", "BUILTIN_CODES", "schema"]

_TENSOR_TYPES = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.uint8): schema.TensorType.UINT8,
    np.dtype(np.int64): schema.TensorType.INT64,
    np.dtype(np.bool_): schema.TensorType.BOOL,
    np.dtype(np.int16): schema.TensorType.INT16,
    np.dtype(np.int8): schema.TensorType.INT8,
}

ACTIVATIONS = {
    "NONE": schema.ActivationFunctionType.NONE,
    "RELU": schema.ActivationFunctionType.RELU,
    "RELU_N1_TO_1": schema.ActivationFunctionType.RELU_N1_TO_1,
    "RELU6": schema.ActivationFunctionType.RELU6,
}

_PADDINGS = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}

#: name -> builtin operator code, for every builtin the schema knows.
BUILTIN_CODES = {
    k: v for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")
}

# Operator versions the TFLite converter writes for int8 kernels. Neither
# reference interpreter checks them (beyond "within the registered range"),
# they only make the models look like converter output. Float ops get 1.
_INT8_VERSIONS = {
    "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2,
    "SUB": 2, "MUL": 2, "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "MEAN": 2,
    "PAD": 2, "PADV2": 2, "RESHAPE": 1, "SOFTMAX": 2, "CONCATENATION": 2,
    "LOGISTIC": 2, "HARD_SWISH": 1, "QUANTIZE": 2, "DEQUANTIZE": 2,
    "TRANSPOSE": 2, "RELU": 2, "RELU6": 2,
}


def quantize(x, scale, zero_point=0, dtype=np.int8) -> np.ndarray:
    """Affine-quantize float data, rounding half away from zero like TFLite.

    ``scale``/``zero_point`` may be arrays broadcastable against ``x`` (for
    per-channel data put the channel axis last or reshape them accordingly).
    """
    v = np.asarray(x, np.float64) / np.asarray(scale, np.float64)
    v = np.sign(v) * np.floor(np.abs(v) + 0.5) + np.asarray(zero_point)
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


# --------------------------------------------------------------------------
# Per-op builtin options. Each entry: (BuiltinOptions union type, factory that
# takes the op's keyword arguments and returns the *OptionsT object).
# --------------------------------------------------------------------------


def _act(name) -> int:
    if isinstance(name, (int, np.integer)):
        return int(name)
    try:
        return ACTIVATIONS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; use one of {list(ACTIVATIONS)}") from None


def _pad(name) -> int:
    if isinstance(name, (int, np.integer)):
        return int(name)
    try:
        return _PADDINGS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown padding {name!r}; use SAME or VALID") from None


def _conv(padding="VALID", stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, activation="NONE"):
    return schema.Conv2DOptionsT(
        padding=_pad(padding), strideW=stride_w, strideH=stride_h,
        fusedActivationFunction=_act(activation),
        dilationWFactor=dilation_w, dilationHFactor=dilation_h)


def _dwconv(padding="VALID", stride_h=1, stride_w=1, dilation_h=1, dilation_w=1,
            depth_multiplier=1, activation="NONE"):
    return schema.DepthwiseConv2DOptionsT(
        padding=_pad(padding), strideW=stride_w, strideH=stride_h,
        depthMultiplier=depth_multiplier, fusedActivationFunction=_act(activation),
        dilationWFactor=dilation_w, dilationHFactor=dilation_h)


def _fc(activation="NONE", keep_num_dims=False):
    return schema.FullyConnectedOptionsT(
        fusedActivationFunction=_act(activation), keepNumDims=bool(keep_num_dims))


def _pool(filter_h, filter_w, stride_h=None, stride_w=None, padding="VALID", activation="NONE"):
    return schema.Pool2DOptionsT(
        padding=_pad(padding),
        strideW=filter_w if stride_w is None else stride_w,
        strideH=filter_h if stride_h is None else stride_h,
        filterWidth=filter_w, filterHeight=filter_h,
        fusedActivationFunction=_act(activation))


def _with_act(cls):
    def make(activation="NONE"):
        return cls(fusedActivationFunction=_act(activation))
    return make


def _no_options(cls):
    def make():
        return cls()
    return make


_BO = schema.BuiltinOptions
_OPTIONS: dict[str, tuple[int, Callable]] = {
    "CONV_2D": (_BO.Conv2DOptions, _conv),
    "DEPTHWISE_CONV_2D": (_BO.DepthwiseConv2DOptions, _dwconv),
    "FULLY_CONNECTED": (_BO.FullyConnectedOptions, _fc),
    "ADD": (_BO.AddOptions, _with_act(schema.AddOptionsT)),
    "SUB": (_BO.SubOptions, _with_act(schema.SubOptionsT)),
    "MUL": (_BO.MulOptions, _with_act(schema.MulOptionsT)),
    "AVERAGE_POOL_2D": (_BO.Pool2DOptions, _pool),
    "MAX_POOL_2D": (_BO.Pool2DOptions, _pool),
    "MEAN": (_BO.ReducerOptions, lambda keep_dims=False: schema.ReducerOptionsT(keepDims=bool(keep_dims))),
    "PAD": (_BO.PadOptions, _no_options(schema.PadOptionsT)),
    "PADV2": (_BO.PadV2Options, _no_options(schema.PadV2OptionsT)),
    "RESHAPE": (_BO.ReshapeOptions, lambda new_shape: schema.ReshapeOptionsT(newShape=[int(d) for d in new_shape])),
    "SOFTMAX": (_BO.SoftmaxOptions, lambda beta=1.0: schema.SoftmaxOptionsT(beta=float(beta))),
    "CONCATENATION": (_BO.ConcatenationOptions,
                      lambda axis, activation="NONE": schema.ConcatenationOptionsT(
                          axis=axis, fusedActivationFunction=_act(activation))),
    "HARD_SWISH": (_BO.HardSwishOptions, _no_options(schema.HardSwishOptionsT)),
    "QUANTIZE": (_BO.QuantizeOptions, _no_options(schema.QuantizeOptionsT)),
    "DEQUANTIZE": (_BO.DequantizeOptions, _no_options(schema.DequantizeOptionsT)),
    "TRANSPOSE": (_BO.TransposeOptions, _no_options(schema.TransposeOptionsT)),
    # LOGISTIC, RELU, RELU6 (and anything else) carry no builtin options.
}

# Ops whose second operand is an int32 constant that op() can create from a
# keyword argument: name -> keyword.
_CONST_OPERAND = {"MEAN": "axis", "PAD": "paddings", "PADV2": "paddings",
                  "RESHAPE": "new_shape", "TRANSPOSE": "perm"}


class _Tensor:
    __slots__ = ("shape", "dtype", "scale", "zero_point", "quantized_dimension",
                 "buffer", "name", "data")

    def __init__(self, shape, dtype, scale, zero_point, quantized_dimension, buffer, name, data=None):
        self.shape = shape
        self.dtype = dtype
        self.scale = scale
        self.zero_point = zero_point
        self.quantized_dimension = quantized_dimension
        self.buffer = buffer
        self.name = name
        self.data = data


class ModelBuilder:
    """Accumulates tensors and operators of a single-subgraph model."""

    def __init__(self, description: str = "tinyadapt test model"):
        self.description = description
        self._tensors: list[_Tensor] = []
        self._buffers: list[bytes | None] = [None]  # buffer 0: empty sentinel
        self._ops: list[tuple[int, int, list[int], list[int], int, object]] = []
        self._inputs: list[int] = []
        self._outputs: list[int] = []

    # ---------------------------------------------------------------- tensors
    def tensor(self, shape: Sequence[int], dtype=np.int8, scale=None, zero_point=0,
               quantized_dimension: int = 0, name: str | None = None) -> int:
        """Add a non-constant (intermediate/output) tensor; returns its index.

        ``scale=None`` means no quantization parameters (float / int32 shape
        tensors). ``scale`` may be a scalar or a per-channel sequence.
        """
        return self._add(shape, dtype, scale, zero_point, quantized_dimension, 0, name)

    def input(self, shape: Sequence[int], dtype=np.int8, scale=None, zero_point=0,
              name: str | None = None) -> int:
        """Add a model input tensor (subgraph inputs are in call order)."""
        t = self.tensor(shape, dtype, scale, zero_point, name=name or f"input_{len(self._inputs)}")
        self._inputs.append(t)
        return t

    def const(self, array, dtype=None, scale=None, zero_point=None,
              quantized_dimension: int = 0, name: str | None = None) -> int:
        """Add a constant tensor holding ``array`` (its dtype unless ``dtype``).

        ``scale`` scalar -> per-tensor (zero_point defaults to 0); ``scale``
        sequence -> per-channel along ``quantized_dimension`` (zero_point
        defaults to zeros of the same length).
        """
        arr = np.asarray(array, dtype=dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if arr.dtype == np.int64 and dtype is None:
            arr = arr.astype(np.int32)
        arr = np.ascontiguousarray(arr)
        self._buffers.append(arr.tobytes())
        buf = len(self._buffers) - 1
        if zero_point is None:
            zero_point = 0 if scale is None or np.ndim(scale) == 0 else np.zeros(len(scale), np.int64)
        return self._add(arr.shape, arr.dtype, scale, zero_point, quantized_dimension, buf,
                         name, data=arr)

    def output(self, *tensors: int) -> None:
        """Mark tensor(s) as model outputs (in call order)."""
        self._outputs.extend(int(t) for t in tensors)

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(self._tensors[t].shape)

    def quant(self, t: int) -> tuple:
        """(scale, zero_point) of tensor ``t`` as stored (scalars or arrays)."""
        tt = self._tensors[t]
        return tt.scale, tt.zero_point

    def _add(self, shape, dtype, scale, zero_point, qdim, buffer, name, data=None) -> int:
        dtype = np.dtype(dtype)
        if dtype not in _TENSOR_TYPES:
            raise TypeError(f"unsupported tensor dtype {dtype}")
        idx = len(self._tensors)
        self._tensors.append(_Tensor(
            tuple(int(d) for d in shape), dtype, scale, zero_point, qdim, buffer,
            name or f"t{idx}", data))
        return idx

    # -------------------------------------------------------------- operators
    def op(self, op: str | int, inputs: Sequence[int], outputs: Sequence[int],
           version: int | None = None, options=None, **kwargs) -> int:
        """Append an operator; returns its index in the subgraph.

        ``op`` is a builtin name ("CONV_2D") or a raw builtin code (int) --
        raw codes get no builtin options unless ``options=(union_type,
        OptionsT)`` is given. Keyword arguments are that op's options:

        * CONV_2D: padding, stride_h, stride_w, dilation_h, dilation_w, activation
        * DEPTHWISE_CONV_2D: same + depth_multiplier
        * FULLY_CONNECTED: activation, keep_num_dims
        * ADD / SUB / MUL: activation
        * AVERAGE_POOL_2D / MAX_POOL_2D: filter_h, filter_w, stride_h, stride_w
          (default: filter size), padding, activation
        * MEAN: keep_dims; axis=... creates the int32 axis operand
        * PAD / PADV2: paddings=[[b, a], ...] creates the int32 [n, 2] operand;
          PADV2 constant_value=q creates the pad-value operand (input's quant)
        * RESHAPE: new_shape (stored in ReshapeOptions; also appended as an
          int32 operand if only one input was given)
        * SOFTMAX: beta;  CONCATENATION: axis, activation
        * LOGISTIC, HARD_SWISH, QUANTIZE, DEQUANTIZE, RELU, RELU6: none
        * TRANSPOSE: perm=... creates the int32 perm operand
        """
        inputs = [int(i) for i in inputs]
        outputs = [int(o) for o in outputs]
        if isinstance(op, str):
            name = op.upper()
            if name not in BUILTIN_CODES:
                raise ValueError(f"unknown builtin op {op!r}")
            code = BUILTIN_CODES[name]
        else:
            code = int(op)
            name = next((k for k, v in BUILTIN_CODES.items() if v == code), None)

        # Constant operands that can be given as keywords.
        key = _CONST_OPERAND.get(name)
        if key == "new_shape":
            if "new_shape" not in kwargs:
                if len(inputs) >= 2 and self._tensors[inputs[1]].data is not None:
                    kwargs["new_shape"] = self._tensors[inputs[1]].data.reshape(-1).tolist()
                else:
                    kwargs["new_shape"] = list(self._tensors[outputs[0]].shape)
            if len(inputs) == 1:
                inputs.append(self.const(np.asarray(kwargs["new_shape"], np.int32)))
        elif key is not None and key in kwargs:
            val = np.asarray(kwargs.pop(key), np.int32)
            if key == "axis":
                val = val.reshape(-1)
            inputs.insert(1, self.const(val))
        if name == "PADV2" and "constant_value" in kwargs:
            src = self._tensors[inputs[0]]
            cv = np.asarray([kwargs.pop("constant_value")], src.dtype)
            inputs.append(self.const(cv, scale=src.scale, zero_point=src.zero_point))

        if options is not None:
            opt_type, opt_obj = options
        elif name in _OPTIONS:
            opt_type, factory = _OPTIONS[name]
            try:
                opt_obj = factory(**kwargs)
            except TypeError as e:
                raise TypeError(f"bad options for {name}: {e}") from None
        else:
            if kwargs:
                raise TypeError(f"{name or code} takes no options, got {sorted(kwargs)}")
            opt_type, opt_obj = schema.BuiltinOptions.NONE, None

        if version is None:
            first = self._tensors[inputs[0]] if inputs and inputs[0] >= 0 else None
            version = _INT8_VERSIONS.get(name, 1) if first is not None and first.dtype == np.int8 else 1
        self._ops.append((code, version, inputs, outputs, opt_type, opt_obj))
        return len(self._ops) - 1

    # ------------------------------------------------------------------ build
    def to_model_t(self) -> schema.ModelT:
        """The model as a schema ModelT object (for tests that tamper with it)."""
        if not self._inputs or not self._outputs:
            raise ValueError("model needs at least one input and one output")
        opcode_index: dict[tuple[int, int], int] = {}
        opcodes = []
        operators = []
        for code, version, inputs, outputs, opt_type, opt_obj in self._ops:
            k = (code, version)
            if k not in opcode_index:
                opcode_index[k] = len(opcodes)
                opcodes.append(schema.OperatorCodeT(
                    deprecatedBuiltinCode=min(code, 127), version=version, builtinCode=code))
            operators.append(schema.OperatorT(
                opcodeIndex=opcode_index[k], inputs=inputs, outputs=outputs,
                builtinOptionsType=opt_type, builtinOptions=opt_obj))

        tensors = []
        for t in self._tensors:
            q = None
            if t.scale is not None:
                scale = np.atleast_1d(np.asarray(t.scale, np.float32)).tolist()
                zp = np.atleast_1d(np.asarray(t.zero_point, np.int64)).tolist()
                if len(zp) == 1 and len(scale) > 1:
                    zp = zp * len(scale)
                if len(zp) != len(scale):
                    raise ValueError(f"tensor {t.name}: {len(scale)} scales but {len(zp)} zero points")
                q = schema.QuantizationParametersT(
                    scale=scale, zeroPoint=zp, quantizedDimension=int(t.quantized_dimension))
            tensors.append(schema.TensorT(
                shape=np.asarray(t.shape, np.int32), type=_TENSOR_TYPES[t.dtype],
                buffer=t.buffer, name=t.name, quantization=q))

        buffers = [schema.BufferT(data=None if b is None else np.frombuffer(b, np.uint8))
                   for b in self._buffers]
        subgraph = schema.SubGraphT(tensors=tensors, inputs=list(self._inputs),
                                    outputs=list(self._outputs), operators=operators,
                                    name="main")
        return schema.ModelT(version=3, operatorCodes=opcodes, subgraphs=[subgraph],
                             description=self.description, buffers=buffers)

    def build(self) -> bytes:
        """Serialize to .tflite flatbuffer bytes (file identifier TFL3)."""
        return pack_model(self.to_model_t())


def pack_model(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
