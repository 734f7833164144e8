"""Padding invariance of every masked network: a jet's outputs must not depend on how many padded slots follow its
real objects, in PyTorch (evaluation and training batch statistics) and in the exported ONNX graph. `ai4hep serve`
cuts trailing padding on that promise (src/ai4hep/serve/padding.py); the loader trims batches to their longest jet.

Small random models on synthetic jets whose real-object counts include empty jets and jets with fewer objects than
ParticleNet's k, where padded slots used to enter the neighbour average.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ai4hep.data.loader import OBJECT_KEYS
from ai4hep.models import MODELS, get_model
from ai4hep.models.kinds.torch import TorchKind, model_inputs

N_JET, N_OBJ, N_CLASSES = 2, 5, 3
COUNTS = [0, 1, 2, 3, 5, 7, 12, 4]  # real objects per jet; the longest sets the trimmed width
BASE, EXTRA = 16, 7  # the reference padding and the slots added to it
TOLERANCE = 1e-5
SMALL = {
    "pfn": {"phi": [16, 16], "f": [16]},
    "efn": {"phi": [16, 16], "f": [16]},
    "particlenet": {"k": 6, "blocks": [[16, 16], [16, 16]], "fusion": 32, "fc": [16], "dropout": 0.0},
    "part": {"embed": [16, 32], "pair_embed": [8, 8], "heads": 2, "blocks": 1, "class_blocks": 1, "dropout": 0.0},
    "dips": {"phi": [16, 16], "f": [16]},
    "gn2": {"init": [16], "embed": 16, "heads": 2, "layers": 1, "head_hidden": [16, 8]},  # with both auxiliary tasks
}
MASKED = [n for n, e in MODELS.items() if e.adapter.name == "torch" and "mask" in e.inputs]


def _model(name: str) -> torch.nn.Module:
    entry = get_model(name)
    torch.manual_seed(0)
    model = entry.cls(N_JET, N_OBJ, N_CLASSES, entry.parse_params(SMALL[name]))
    with torch.no_grad():  # non-trivial batch-norm statistics, so that evaluation does not run them as identities
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _jets(width: int = BASE) -> dict[str, np.ndarray]:
    """Every input any model reads, for len(COUNTS) jets padded with zeros to `width` objects."""
    rng = np.random.default_rng(0)
    b = len(COUNTS)
    mask = np.arange(width) < np.array(COUNTS)[:, None]
    pt = rng.exponential(10.0, (b, width)) + 1.0
    eta, phi = rng.normal(0, 0.4, (b, width)), rng.normal(0, 0.4, (b, width))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    batch = {
        "jet": rng.normal(size=(b, N_JET)),
        "objects": rng.normal(size=(b, width, N_OBJ)),
        "points": np.stack([eta, phi], -1),
        "vectors": np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2) + 0.1], -1),
        "z": pt / np.maximum((pt * mask).sum(1, keepdims=True), 1e-8),
    }
    out = {"mask": mask}
    for k, v in batch.items():
        if k in OBJECT_KEYS:
            v = v * mask.reshape(*mask.shape, *([1] * (v.ndim - 2)))
        out[k] = v.astype(np.float32)
    return out


def _padded(batch: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """The same jets cut or zero-padded to `width` objects."""
    out = {}
    for k, v in batch.items():
        if k in OBJECT_KEYS:
            if width <= v.shape[1]:
                v = v[:, :width]
            else:
                v = np.concatenate([v, np.zeros((v.shape[0], width - v.shape[1], *v.shape[2:]), v.dtype)], axis=1)
        out[k] = np.ascontiguousarray(v)
    return out


WIDTHS = {"trimmed": max(COUNTS), "padded": BASE + EXTRA}
SHORT = [i for i, n in enumerate(COUNTS) if n <= 5]  # alone and cut to 5 slots: fewer than ParticleNet's k + 1
CASES = {**{k: (list(range(len(COUNTS))), w) for k, w in WIDTHS.items()}, "short jets trimmed": (SHORT, 5)}


def _case(batch: dict[str, np.ndarray], label: str) -> dict[str, np.ndarray]:
    jets, width = CASES[label]
    return _padded({k: v[jets] for k, v in batch.items()}, width)


def _outputs(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Raw outputs and inference outputs, by name (`out.<task>` for a multi-task model's raw ones)."""
    tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
    out = model(**model_inputs(model, tensors))
    if not isinstance(out, dict):
        return {"logits": out, "probs": torch.softmax(out, -1)}
    return {**{f"out.{k}": v for k, v in out.items()}, **model.infer(out, tensors["mask"])}


def _deviation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Largest |a - b| over real objects: the axes on which a and b differ in length run over objects (both were
    computed at different widths); they are cut to the shorter and entries with a padded object left out."""
    a, b = np.asarray(a), np.asarray(b)
    axes = [i for i in range(a.ndim) if a.shape[i] != b.shape[i]]
    if axes:
        t = min(a.shape[axes[0]], b.shape[axes[0]])
        index = tuple(slice(0, t) if i in axes else slice(None) for i in range(a.ndim))
        a, b = a[index], b[index]
        keep = np.ones(a.shape, bool)
        for i in axes:  # jet axis 0 and object axis i
            shape = [1] * a.ndim
            shape[0], shape[i] = mask.shape[0], t
            keep &= mask[:, :t].reshape(shape)
        a, b = np.where(keep, a, 0), np.where(keep, b, 0)
    return float(np.abs(a - b).max())


def test_every_masked_model_is_covered() -> None:
    assert set(MASKED) == set(SMALL)


@pytest.mark.parametrize("name", MASKED)
def test_padding_does_not_change_outputs_in_pytorch(name: str) -> None:
    model, batch = _model(name), _jets()
    with torch.no_grad():
        ref = _outputs(model, batch)
        for label, (jets, width) in CASES.items():
            got = _outputs(model, _case(batch, label))
            for key in ref:
                dev = _deviation(ref[key][jets].numpy(), got[key].numpy(), batch["mask"][jets])
                assert dev <= TOLERANCE, f"{name} {key} {label} to {width} objects: changed by {dev:.3g}"
        padded = _padded(batch, WIDTHS["padded"])
        pad = ~torch.from_numpy(padded["mask"])
        for key, v in _outputs(model, padded).items():
            if not key.startswith("out.") and v.ndim >= 3:  # per-object probabilities of padded slots are zero
                assert not v[pad].any(), f"{name} {key} on padded slots"
                assert v.shape[2] != v.shape[1] or not v.transpose(1, 2)[pad].any(), f"{name} {key} on padded pairs"


@pytest.mark.parametrize("name", MASKED)
def test_padding_does_not_change_training_batch_statistics(name: str) -> None:
    """In training, batch-norm statistics come from real objects (and pairs, edges) only: the same jets padded
    differently give the same outputs and move the running statistics the same way."""
    base, batch = _model(name).train(), _jets()
    models, outs = {}, {}
    for label, width in {"base": BASE, **WIDTHS}.items():
        models[label] = copy.deepcopy(base)
        torch.manual_seed(1)
        with torch.no_grad():
            outs[label] = _outputs(models[label], _padded(batch, width))
    for label in WIDTHS:
        for key in outs["base"]:
            dev = _deviation(outs["base"][key].numpy(), outs[label][key].numpy(), batch["mask"])
            assert dev <= TOLERANCE, f"{name} (training) {key} {label}: changed by {dev:.3g}"
        stats = {k: v for k, v in models[label].state_dict().items() if "running" in k}
        for k, v in stats.items():
            dev = float((v - models["base"].state_dict()[k]).abs().max())
            assert dev <= TOLERANCE, f"{name} (training) {k} {label}: changed by {dev:.3g}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """Each model exported once (at the base padding) through the torch kind's ONNX writer."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            model, batch = _model(name), _jets()
            path = Path(tmp_path_factory.mktemp("onnx")) / f"{name}.onnx"
            graph = TorchKind().write_onnx(model, batch, path)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            cache[name] = (model, graph, session)
        return cache[name]

    return get


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("name", MASKED)
def test_padding_does_not_change_outputs_in_onnx(exported, name: str) -> None:
    _, graph, session = exported(name)
    batch = _jets()

    def run(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(graph.outputs, {n: feed[n] for n in graph.inputs})

    ref = run(_jets())
    for want, got, key in zip(graph.reference(batch), ref, graph.outputs, strict=True):
        assert _deviation(want, got, batch["mask"]) <= 1e-4, f"{name} {key}: ONNX differs from PyTorch"
    for label, (jets, width) in CASES.items():
        for a, b, key in zip(ref, run(_case(batch, label)), graph.outputs, strict=True):
            dev = _deviation(a[jets], b, batch["mask"][jets])
            assert dev <= TOLERANCE, f"{name} ONNX {key} {label} to {width} objects: changed by {dev:.3g}"
