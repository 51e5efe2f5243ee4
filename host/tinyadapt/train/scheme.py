"""An update scheme: what a training step changes (ALGORITHMS.md section 2, "sparse update").

Layers are the model's weight layers (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) numbered
0.. in execution order. `bias_depth` k updates the biases of the last k of them; `weights`
maps a layer number to the fraction of its output channels whose weights are updated (the
kept channels, those of largest L2 norm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RATIOS = (0.125, 0.25, 0.5, 1.0)


@dataclass
class UpdateScheme:
    bias_depth: int = 0
    weights: dict[int, float] = field(default_factory=dict)  # layer number -> channel ratio

    def describe(self) -> str:
        ws = ", ".join(f"layer {i} x{r:g}" for i, r in sorted(self.weights.items()))
        return f"biases of the last {self.bias_depth} layers" + (f"; weights of {ws}" if ws else "")

    def to_json(self) -> dict:
        return {"bias_depth": self.bias_depth,
                "layers": [{"index": i, "channel_ratio": r} for i, r in sorted(self.weights.items())]}

    @classmethod
    def full(cls, n_layers: int) -> "UpdateScheme":
        """Every bias and every weight: full backpropagation."""
        return cls(bias_depth=n_layers, weights={i: 1.0 for i in range(n_layers)})


def default_scheme(n_layers: int) -> "UpdateScheme":
    """The documented default without data (plan-update --help): the paper's findings are that
    the last layers matter most, so update every bias of the last third of the layers (at
    least 2), the classifier's weights in full and the two weight layers before it at 1/2 and
    1/4 of their channels."""
    depth = max(2, n_layers // 3)
    weights = {n_layers - 1: 1.0}
    if n_layers >= 2:
        weights[n_layers - 2] = 0.5
    if n_layers >= 3:
        weights[n_layers - 3] = 0.25
    return UpdateScheme(bias_depth=min(depth, n_layers), weights=weights)
