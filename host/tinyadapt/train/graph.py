"""The training graph: backward ops derived from a converted model and an update scheme.

What the device runs after the forward pass (firmware/include/tinyadapt/ops/ta_backward.h):
  - the loss op at the logits (the input of the final SOFTMAX, or the output itself);
  - one backward op per forward op that lies between an updated layer and the loss, in
    reverse execution order. Everything else is pruned: frozen branches, and every op before
    the deepest updated layer (input gradients stop there);
  - an updated op computes its input gradient first (with the weights before the step), then
    applies the SGD step to its bias and, one kept output channel at a time, to its weights:
    no weight gradient outlives its channel, and each activation gradient dies as soon as the
    op below has read it.
The step's arena is planned by plan/memory.py over forward + backward ops, so a forward
activation a backward op reads (an updated layer's input, a masked op's output) stays alive
until then, and everything else is reused as in inference.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from tinyadapt.convert import ConvertedModel
from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.blob import write_blob
from tinyadapt.convert.lowering import BlobTensor, Lowered
from tinyadapt.errors import PlanError, UnsupportedModelError
from tinyadapt.plan.memory import MemoryPlan, plan_memory
from tinyadapt.train.scheme import UpdateScheme

WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
BACKWARD_OF = {
    "CONV_2D": "CONV_2D_BACKWARD",
    "DEPTHWISE_CONV_2D": "DEPTHWISE_CONV_2D_BACKWARD",
    "FULLY_CONNECTED": "FULLY_CONNECTED_BACKWARD",
    "ADD": "ADD_BACKWARD",
    "AVERAGE_POOL_2D": "AVERAGE_POOL_2D_BACKWARD",
    "MEAN": "MEAN_BACKWARD",
    "PAD": "PAD_BACKWARD",
    "RESHAPE": "RESHAPE_BACKWARD",
    "MAX_POOL_2D": "MAX_POOL_2D_BACKWARD",
}
UPDATE_WEIGHTS, UPDATE_BIAS, ACCUMULATE_0, ACCUMULATE_1 = 0x1, 0x2, 0x4, 0x8


def _name(op: Lowered) -> str:
    return bf.OPCODE_NAMES[op.opcode]


def _i32(params: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(params) // 4}i", params))


@dataclass
class Layer:
    """A weight layer of the model (numbered in execution order)."""

    number: int
    op_index: int
    kind: str
    filter: int              # blob tensor indices
    bias: int
    channels: int            # output channels
    row: int                 # weights per output channel
    scales: np.ndarray       # float32 [channels], s_W per output channel
    weights: np.ndarray      # int8, the filter as stored
    macs: int

    def channel_rows(self) -> np.ndarray:
        """Weights of each output channel, [channels, row] (depthwise: its taps)."""
        if self.kind == "DEPTHWISE_CONV_2D":
            return self.weights.reshape(-1, self.channels).T
        return self.weights.reshape(self.channels, -1)

    def kept_channels(self, ratio: float) -> np.ndarray:
        """The int(round(ratio * C)) (at least 1) channels of largest L2 norm, ascending."""
        n = max(1, min(self.channels, int(round(ratio * self.channels))))
        norms = np.linalg.norm(self.channel_rows().astype(np.float64) * self.scales[:, None], axis=1)
        order = np.argsort(-norms, kind="stable")[:n]
        return np.sort(order).astype(np.int32)


def weight_layers(cm: ConvertedModel) -> list[Layer]:
    layers = []
    for i, op in enumerate(cm.ops):
        kind = _name(op)
        if kind not in WEIGHT_OPS:
            continue
        w = cm.tensors[op.inputs[1]]
        ir_w = cm.graph.tensors[op.source.inputs[1]]
        channels = w.shape[3] if kind == "DEPTHWISE_CONV_2D" else w.shape[0]
        scales = np.asarray(ir_w.scale, dtype=np.float32)
        if scales.size == 1:
            scales = np.full(channels, scales[0], dtype=np.float32)
        weights = np.frombuffer(w.data, dtype=np.int8).reshape(w.shape)
        layers.append(Layer(len(layers), i, kind, op.inputs[1], op.inputs[2], channels,
                            int(weights.size // channels), scales, weights, int(op.macs)))
    return layers


@dataclass
class TrainPlan:
    converted: ConvertedModel
    scheme: UpdateScheme
    layers: list[Layer]
    kept: dict[int, np.ndarray]           # layer number -> kept channels
    tensors: list[BlobTensor]
    ops: list[Lowered]
    n_forward_ops: int
    memory: MemoryPlan
    blob: bytes
    param_ram_bytes: int
    param_image_bytes: int                 # what SAVE persists (the masters)
    forward_macs: int
    backward_macs: int
    logits: int                            # blob tensor index
    grads: dict[int, int] = field(default_factory=dict)  # activation -> its gradient tensor
    patch: object | None = None            # PatchPlan when the forward pass starts patch by patch

    @property
    def arena_bytes(self) -> int:
        return self.memory.arena_size

    @property
    def peak_sram_bytes(self) -> int:
        """The training step's SRAM: its arena plus the parameter RAM."""
        return self.memory.arena_size + self.param_ram_bytes

    @property
    def macs_per_step(self) -> int:
        return self.forward_macs + self.backward_macs

    @property
    def updated_layers(self) -> list[Layer]:
        return [layer for layer in self.layers
                if layer.number in self.scheme.weights or layer.number >= len(self.layers) - self.scheme.bias_depth]


def _loss_site(cm: ConvertedModel):
    """(logits tensor, beta, forward op index that ends the differentiable part)."""
    producer = {t: i for i, op in enumerate(cm.ops) for t in op.outputs}
    t = cm.outputs[0]
    i = producer.get(t)
    if i is not None and _name(cm.ops[i]) == "DEQUANTIZE":
        t = cm.ops[i].inputs[0]
        i = producer.get(t)
    beta = 1.0
    if i is not None and _name(cm.ops[i]) == "SOFTMAX":
        beta = float(np.float32(cm.ops[i].source.options.get("beta", 1.0)))
        t = cm.ops[i].inputs[0]
    if cm.tensors[t].dtype != np.int8:
        raise UnsupportedModelError(f"{cm.source}: training needs int8 logits before the output, "
                                    f"got {np.dtype(cm.tensors[t].dtype).name}")
    return t, beta


def build_training(cm: ConvertedModel, scheme: UpdateScheme, budget: int | None = None) -> TrainPlan:
    """Derive, prune, slice and order the backward graph; plan the step's arena; write the blob.

    budget: SRAM bytes for the step (arena + parameter RAM). When layer by layer does not fit,
    the forward pass's first ops run patch by patch (MCUNetV2) where that fits: the backward
    pass never reaches into the stage (the plan with the least MAC overhead that fits, else
    the smallest)."""
    if cm.patch is not None:
        raise PlanError(f"{cm.source}: a patch-planned model cannot train (the backward pass reads full maps)")
    layers = weight_layers(cm)
    n_layers = len(layers)
    if n_layers == 0:
        raise UnsupportedModelError(f"{cm.source}: no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED layer to train")
    for i, r in scheme.weights.items():
        if not 0 <= i < n_layers:
            raise PlanError(f"{cm.source}: layer {i} does not exist (the model has weight layers 0..{n_layers - 1})")
        if not 0 < r <= 1:
            raise PlanError(f"{cm.source}: layer {i}: channel ratio {r} is not in (0, 1]")
    if not 0 <= scheme.bias_depth <= n_layers:
        raise PlanError(f"{cm.source}: bias depth {scheme.bias_depth} is not in 0..{n_layers}")
    by_op = {layer.op_index: layer for layer in layers}
    flags_of: dict[int, int] = {}
    kept: dict[int, np.ndarray] = {}
    for layer in layers:
        f = 0
        if layer.number in scheme.weights:
            f |= UPDATE_WEIGHTS
            kept[layer.number] = layer.kept_channels(scheme.weights[layer.number])
        if layer.number >= n_layers - scheme.bias_depth and layer.bias >= 0:
            f |= UPDATE_BIAS
        flags_of[layer.op_index] = f
    if not any(flags_of.values()):
        raise PlanError(f"{cm.source}: the update scheme updates nothing")

    tensors = list(cm.tensors)
    fwd = list(cm.ops)
    logits, beta = _loss_site(cm)

    # Which activations depend on an updated parameter (forward), and which reach the loss.
    data_inputs = {}
    for i, op in enumerate(fwd):
        kind = _name(op)
        n_data = 2 if kind == "ADD" else 1
        data_inputs[i] = [t for t in op.inputs[:n_data] if t >= 0 and tensors[t].kind == bf.KIND_ACTIVATION]
    req: set[int] = set()
    for i, op in enumerate(fwd):
        if flags_of.get(i) or any(t in req for t in data_inputs[i]):
            req.update(op.outputs)
    needed = {logits}
    for i in reversed(range(len(fwd))):
        if any(t in needed for t in fwd[i].outputs):
            needed.update(data_inputs[i])
    if logits not in req:
        raise PlanError(f"{cm.source}: no updated layer lies before the logits")

    grads: dict[int, int] = {}

    def grad(t: int) -> int:
        if t not in grads:
            src = tensors[t]
            tensors.append(BlobTensor(name=f"grad:{src.name}", dtype=np.dtype(np.float32), shape=src.shape,
                                      kind=bf.KIND_ACTIVATION))
            grads[t] = len(tensors) - 1
        return grads[t]

    def const(array: np.ndarray, name: str) -> int:
        array = np.ascontiguousarray(array)
        tensors.append(BlobTensor(name=name, dtype=array.dtype, shape=tuple(array.shape) or (1,),
                                  kind=bf.KIND_CONST, data=array.astype(array.dtype.newbyteorder("<")).tobytes()))
        return len(tensors) - 1

    lt = tensors[logits]
    bwd = [Lowered(opcode=bf.BACKWARD_OPCODES["LOSS_GRAD"], inputs=[logits, cm.outputs[0]], outputs=[grad(logits)],
                   params=struct.pack("<ffii", beta, lt.scale, lt.zero_point, 0),
                   macs=3 * int(np.prod(lt.shape)))]
    written: set[int] = {logits}
    backward_macs = bwd[0].macs

    def out_grad(t: int) -> tuple[int, int]:
        """Gradient tensor of input activation t, and whether this op adds to it."""
        if t not in req or t not in needed:
            return bf.NO_TENSOR, 0
        acc = t in written
        written.add(t)
        return grad(t), acc

    for i in reversed(range(len(fwd))):
        op = fwd[i]
        y = op.outputs[0]
        if y not in req or y not in needed or y == logits and _name(op) == "SOFTMAX":
            continue
        kind = _name(op)
        if kind not in BACKWARD_OF:
            raise UnsupportedModelError(f"{cm.source}: op {i} ({kind}) lies between an updated layer and the "
                                        f"loss, and tinyadapt has no backward for {kind}")
        code = bf.BACKWARD_OPCODES[BACKWARD_OF[kind]]
        dy = grads[y]
        p = _i32(op.params)
        if kind in WEIGHT_OPS:
            layer = by_op[i]
            f = flags_of[i]
            x = op.inputs[0]
            dx, acc = out_grad(x)
            f |= ACCUMULATE_0 if acc else 0
            k = kept.get(layer.number)
            ins = [x if f & UPDATE_WEIGHTS else bf.NO_TENSOR, op.inputs[1], op.inputs[2], y, dy,
                   const(layer.scales, f"{tensors[op.inputs[1]].name}/train_scale"),
                   const(k, f"{tensors[op.inputs[1]].name}/kept") if k is not None else bf.NO_TENSOR]
            x_scale = tensors[x].scale
            params = struct.pack(f"<{len(p)}iif", *p, f, x_scale)
            scratch = layer.row * 4 if f & UPDATE_WEIGHTS else 0
            macs = (layer.macs if dx >= 0 else 0) + (layer.macs * len(k) // layer.channels if k is not None else 0)
            macs += int(np.prod(tensors[y].shape)) if f & UPDATE_BIAS else 0
            bwd.append(Lowered(opcode=code, inputs=ins, outputs=[dx], params=params, macs=macs, scratch_bytes=scratch))
        elif kind == "ADD":
            if tuple(tensors[op.inputs[0]].shape) != tuple(tensors[op.inputs[1]].shape):
                raise UnsupportedModelError(f"{cm.source}: op {i} (ADD) broadcasts; training through it is not supported")
            d0, a0 = out_grad(op.inputs[0])
            d1, a1 = out_grad(op.inputs[1]) if op.inputs[1] != op.inputs[0] else (bf.NO_TENSOR, 0)
            f = (ACCUMULATE_0 if a0 else 0) | (ACCUMULATE_1 if a1 else 0)
            if op.inputs[1] == op.inputs[0]:
                raise UnsupportedModelError(f"{cm.source}: op {i} (ADD) adds a tensor to itself")
            bwd.append(Lowered(opcode=code, inputs=[y, dy], outputs=[d0, d1], params=struct.pack("<3i", p[10], p[11], f),
                               macs=2 * int(np.prod(tensors[y].shape))))
        else:
            x = op.inputs[0]
            dx, acc = out_grad(x)
            if dx < 0:
                continue
            f = ACCUMULATE_0 if acc else 0
            n_x = int(np.prod(tensors[x].shape))
            if kind == "MAX_POOL_2D":
                bwd.append(Lowered(opcode=code, inputs=[x, dy], outputs=[dx], params=struct.pack("<9i", *p, f),
                                   macs=n_x))
            elif kind == "AVERAGE_POOL_2D":
                bwd.append(Lowered(opcode=code, inputs=[y, dy], outputs=[dx], params=struct.pack("<9i", *p, f),
                                   macs=n_x))
            elif kind == "MEAN":
                bwd.append(Lowered(opcode=code, inputs=[dy], outputs=[dx], params=struct.pack("<3i", p[0], p[1], f),
                                   macs=n_x))
            elif kind == "PAD":
                bwd.append(Lowered(opcode=code, inputs=[dy], outputs=[dx], params=struct.pack(f"<{len(p)}ii", *p, f),
                                   macs=n_x))
            else:  # RESHAPE: the same bytes, unless another consumer's share is already in dx
                bwd.append(Lowered(opcode=code, inputs=[dy], outputs=[dx], params=struct.pack("<i", f),
                                   alias_input=None if acc else 0, macs=0 if not acc else n_x))
        backward_macs += bwd[-1].macs

    ops = fwd + bwd
    # Parameter RAM (engine/ta_train.c, train/params.py): only what is updated. The image (what
    # SAVE persists) is the float32 masters; the int8 kept rows and int32 biases are copies.
    param_ram = param_image = 0
    for layer in layers:
        f = flags_of[layer.op_index]
        if f & UPDATE_WEIGHTS:
            n = len(kept[layer.number]) * layer.row
            param_image += 4 * n
            param_ram += 4 * n + (n + 3) // 4 * 4
        if f & UPDATE_BIAS:
            param_image += 4 * layer.channels
            param_ram += 8 * layer.channels
    memory = plan_memory(tensors, ops, cm.inputs, cm.outputs)
    patch = None
    if budget is not None and memory.arena_size + param_ram > budget:
        sliced = {layer.filter for layer in layers if layer.number in kept and len(kept[layer.number]) < layer.channels}
        patch = _patched(tensors, fwd, bwd, cm, budget - param_ram, sliced)
        if patch is not None and patch.memory.arena_size < memory.arena_size:
            memory = patch.memory
        else:
            patch = None
    blob = write_blob(tensors, ops, cm.inputs, cm.outputs, memory, patch, train_forward_ops=len(fwd))
    return TrainPlan(converted=cm, scheme=scheme, layers=layers, kept=kept, tensors=tensors, ops=ops,
                     n_forward_ops=len(fwd), memory=memory, blob=blob, param_ram_bytes=param_ram,
                     param_image_bytes=param_image, patch=patch,
                     forward_macs=sum(int(op.macs) for op in fwd), backward_macs=backward_macs,
                     logits=logits, grads=grads)


def _patched(tensors, fwd, bwd, cm, arena_budget: int, sliced: set[int]):
    """The patch plan of the whole step (forward stage + the rest + backward ops) with the least
    MAC overhead whose arena fits `arena_budget`, else the smallest; None when no prefix of the
    forward pass can run patch by patch without the backward pass reading inside it."""
    from tinyadapt.plan.patch import STREAM_STRIPS, find_stages, plan_patch, stream_grids

    read_by_backward = {t for op in bwd for t in op.inputs}
    plans = []
    for stage in find_stages(tensors, fwd, cm.outputs):
        if read_by_backward & set(stage.internal):
            continue
        if any(t in sliced for op in fwd[:stage.n_ops] for t in op.inputs):
            continue  # the device recomputes a partly kept layer's channels outside patch stages only
        out_h, out_w = tensors[stage.output].shape[1:3]
        for grid in range(2, min(8, out_h, out_w) + 1):
            plans.append(plan_patch(tensors, fwd + bwd, cm.inputs, cm.outputs, stage, grid))
        for strips in STREAM_STRIPS:  # row bands that keep their halo rows (no recomputation)
            if strips > out_w:
                continue
            for grid in stream_grids(out_h):
                plans.append(plan_patch(tensors, fwd + bwd, cm.inputs, cm.outputs, stage, grid,
                                        stream=True, strips=strips))
    plans = [p for p in plans if p is not None]
    if not plans:
        return None
    fitting = [p for p in plans if p.memory.arena_size <= arena_budget]
    if fitting:
        return min(fitting, key=lambda p: (p.macs, p.memory.arena_size))
    return min(plans, key=lambda p: p.memory.arena_size)
