"""LightGBM runs as ONNX: onnxmltools' `convert_lightgbm`, made to take LightGBM's branches and to be servable.

Two changes to a plain conversion:
- Thresholds. ONNX's TreeEnsembleClassifier holds split thresholds as float32; LightGBM compares in double. On
  discrete features (particle counts, multiplicities) LightGBM puts a threshold half a float32 step below a value that
  occurs in the data, so rounding it to the nearest float32 sends every jet with that value down the other branch
  (seen on the hlf5 BDT's `multiplicity`: 2 of 300 jets off by 3e-4). For a float32 input x, `x <= t` holds exactly
  when `x <= t32`, t32 the largest float32 not above t. The thresholds are rounded down so before conversion, and the
  ONNX trees take LightGBM's branch for every float32 input.
- Outputs. No ZipMap and no label: one float32 tensor `probs` (batch x classes), as the networks give, which
  onnxruntime and Triton-style servers take as is.
The input is the networks' `jet` tensor: float32 (batch x jet features), normalised as the run's preprocessing says
(BDT runs train on the same normalised features as the MLP; see ai4hep.models.kinds.bdt).
"""

from __future__ import annotations

import re

import numpy as np

OUTPUT = "probs"
INPUT = "jet"


def _floor32(value: str) -> str:
    t = float(value)
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return repr(float(f))


def float32_thresholds(model_text: str) -> str:
    """LightGBM's model text with each threshold rounded down to a float32 (same branches for float32 inputs).

    The per-tree byte sizes (`tree_sizes=`, an optional index for parallel loading) no longer hold and are dropped.
    Categorical splits keep their bitset indices: small integers, which float32 holds exactly.
    """
    text = re.sub(
        r"^threshold=(.*)$",
        lambda m: "threshold=" + " ".join(map(_floor32, m.group(1).split())),
        model_text,
        flags=re.M,
    )
    return re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)


def _prune(graph, keep: str) -> None:
    """Keep one graph output, renamed to OUTPUT, and the nodes it needs."""
    (source,) = [o for o in graph.output if o.name == keep]
    for node in graph.node:
        node.output[:] = [OUTPUT if o == keep else o for o in node.output]
    source.name = OUTPUT
    del graph.output[:]
    graph.output.append(source)
    needed, nodes = {OUTPUT}, []
    for node in reversed(graph.node):
        if needed & set(node.output):
            needed |= set(node.input)
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(reversed(nodes))


def convert(booster, n_features: int):
    """An onnx.ModelProto computing the class probabilities of a LightGBM booster; returns (model, exporter name)."""
    import lightgbm as lgb
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    exact = lgb.Booster(model_str=float32_thresholds(booster.model_to_string()))
    model = onnxmltools.convert_lightgbm(
        exact, name="ai4hep_bdt", initial_types=[(INPUT, FloatTensorType([None, n_features]))], zipmap=False
    )
    _prune(model.graph, "probabilities")
    for tensor in (model.graph.input[0], model.graph.output[0]):
        tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
    exporter = f"onnxmltools {onnxmltools.__version__} convert_lightgbm (lightgbm {lgb.__version__})"
    return model, exporter


def threshold_probes(booster, jets: np.ndarray) -> np.ndarray:
    """Every jet with one feature set to the smallest float32 above one split threshold: the inputs a threshold
    rounded to the nearest float32 (instead of down) sends down the wrong branch."""
    probes = []
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                t = node["threshold"]
                above = np.float32(t) if float(np.float32(t)) > t else np.nextafter(np.float32(t), np.float32(np.inf))
                rows = jets.copy()
                rows[:, node["split_feature"]] = above
                probes.append(rows)
                stack += [node["left_child"], node["right_child"]]
    return np.concatenate(probes).astype(np.float32)
