"""`ai4hep evaluate RUN --data PATHS`: predictions, metrics.json and plots for a trained run.

Binary tasks: AUC (Hanley-McNeil error), accuracy, rejection 1/eps_B at eps_S = 0.3, 0.5, 0.7 (binomial errors),
rejection vs jet pT at fixed signal efficiency per bin. Multi-class: one-vs-rest AUC, accuracy, confusion matrix,
and each class against the background class with the discriminant p_k / (p_k + p_bkg) (the JetClass convention).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.data.inspect import dataset_files
from ai4hep.data.loader import InputSpec, JetStream, Normalisation
from ai4hep.errors import UserError
from ai4hep.metrics.binary import accuracy, against_background, auc, auc_error, rejection_at
from ai4hep.metrics.flavour import F_B, F_C, at_working_point, flavour_metrics, origin_metrics, vertex_metrics
from ai4hep.train.card import write_json_atomic

EFFICIENCIES = (0.3, 0.5, 0.7)
FLAVOUR_CLASSES = ["light", "c", "b"]


@dataclass
class Predictions:
    probs: np.ndarray
    labels: np.ndarray
    pt: np.ndarray
    classes: list[str]
    name: str
    # Auxiliary-task outputs by output name (e.g. origin_probs (N, T, 5), vertex_probs (N, T, T)), the per-object
    # truth they are compared with (origin, vertex) and the object mask, all padded to the run's max_objects.
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    mask: np.ndarray | None = None


def _pad_objects(arrays: list[np.ndarray], n: int, axes: tuple[int, ...], fill: float = 0) -> np.ndarray:
    """Concatenate batches whose object axes were trimmed to different lengths, padded back to n."""
    out = []
    for a in arrays:
        widths = [(0, n - a.shape[k]) if k in axes else (0, 0) for k in range(a.ndim)]
        out.append(np.pad(a, widths, constant_values=fill))
    return np.concatenate(out)


class TrainedRun:
    """A run directory loaded for inference: config, preprocessing and weights (best checkpoint, else last)."""

    def __init__(self, run: Path) -> None:
        from ai4hep.models import get_model
        from ai4hep.train.config import load_config
        from ai4hep.train.run import CARD, PREPROCESSING

        self.path = Path(run)
        if not (self.path / "config.yaml").exists() or not (self.path / PREPROCESSING).exists():
            raise UserError(f"{run} is not an ai4hep run directory (no config.yaml / {PREPROCESSING}); train one first")
        if not (self.path / CARD).exists():
            raise UserError(f"{run} has not finished training (no {CARD}); run 'ai4hep train' again to resume")
        self.cfg = load_config(self.path / "config.yaml")
        self.card = json.loads((self.path / CARD).read_text())
        self.pre = json.loads((self.path / PREPROCESSING).read_text())
        self.entry = get_model(self.cfg.model.name)
        self.classes: list[str] = self.pre["classes"]
        self.name = self.path.name
        targets = self.entry.targets(self.entry.parse_params(self.cfg.model.params))
        self.spec = InputSpec(self.cfg.data, extras=self.entry.extras, targets=targets)
        self.norm = Normalisation.from_dict(self.pre["normalisation"])
        self._load()

    def _load(self) -> None:
        if self.entry.kind in ("bdt", "templates"):  # fitted models: one file each, loaded by their class
            from ai4hep.models.bdt import BDT
            from ai4hep.models.ip3d import IP3D
            from ai4hep.train.run import TEMPLATES

            cls, path = (BDT, self.path / "model.txt") if self.entry.kind == "bdt" else (IP3D, self.path / TEMPLATES)
            try:
                self.model = cls.load(path, self.entry.parse_params(self.cfg.model.params), len(self.classes))
            except Exception as exc:
                raise UserError(f"{path} is missing or corrupt ({exc.__class__.__name__}); retrain the run") from None
            return
        from ai4hep.train.run import build_torch_model, check_checkpoint

        ckpt_dir = self.path / "checkpoints"
        path = ckpt_dir / "best.ckpt" if (ckpt_dir / "best.ckpt").exists() else ckpt_dir / "last.ckpt"
        if not path.exists():
            raise UserError(f"{self.path} has no checkpoint; run 'ai4hep train' again to resume")
        state = check_checkpoint(path)["state_dict"]
        self.model = build_torch_model(self.cfg, self.pre)
        try:
            self.model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
        except RuntimeError as exc:
            raise UserError(f"{path} does not fit the run's model ({str(exc).splitlines()[0]})") from None
        self.model.eval()

    def test_files(self) -> list[Path]:
        """The run's own test split (the shards it never trained or validated on)."""
        files = [Path(s["file"]) for s in self.card["dataset"]["shards"]["test"]]
        if not files:
            raise UserError(f"{self.path} was trained without a test split; pass --data PATHS")
        return files

    def files(self, data: list[Path] | None = None) -> list[Path]:
        """The shards of DATA (folders or files) when given, else the run's own test split."""
        return [f for p in data for f in dataset_files(Path(p))] if data else self.test_files()

    def stream(self, files: list[Path]) -> JetStream:
        return JetStream(files, self.spec, len(self.classes), self.norm)

    def outputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the tagger says about one batch: class probabilities ("probs"), then each auxiliary task's output."""
        if self.entry.kind == "bdt":
            return {"probs": self.model.predict_proba(batch["jet"])}
        if self.entry.kind == "templates":
            return {"probs": self.model.predict_proba(batch["objects"], batch["mask"])}
        import torch

        from ai4hep.train.module import model_inputs

        with torch.no_grad():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            out = self.model(**model_inputs(self.model, tensors))
            if isinstance(out, dict):  # a multi-task model: every head's inference output
                return {k: v.numpy() for k, v in self.model.infer(out, tensors["mask"]).items()}
            return {"probs": torch.softmax(out, -1).numpy()}

    def probabilities(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.outputs(batch)["probs"]

    def predict(self, files: list[Path], aux: bool = True) -> Predictions:
        """Predictions on every jet of `files`; aux=False keeps only the jet probabilities (the auxiliary outputs
        of a large sample, e.g. jets x 40 x 40 pair scores, can outgrow memory)."""
        parts: dict[str, list[np.ndarray]] = {}
        targets = self.spec.targets if aux else ()
        for batch in self.stream(files):
            for k, v in self.outputs(batch).items():
                if aux or k == "probs":
                    parts.setdefault(k, []).append(v)
            for k in ("label", "pt", *targets, *(("mask",) if targets else ())):
                parts.setdefault(k, []).append(batch[k])
        n = self.cfg.data.max_objects
        axes = self.model.object_axes() if hasattr(self.model, "object_axes") else {}
        aux_outputs = {k: _pad_objects(v, n, axes[k]) for k, v in parts.items() if k in axes and k != "probs"}
        truth = {t: _pad_objects(parts[t], n, (1,), fill=-1) for t in targets}
        return Predictions(
            np.concatenate(parts["probs"]),
            np.concatenate(parts["label"]),
            np.concatenate(parts["pt"]),
            self.classes,
            self.name,
            aux=aux_outputs,
            truth=truth,
            mask=_pad_objects(parts["mask"], n, (1,), fill=False) if "mask" in parts else None,
        )


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def binary_metrics(score: np.ndarray, is_signal: np.ndarray, pt: np.ndarray, pt_bins: np.ndarray) -> dict:
    n_s, n_b = int(is_signal.sum()), int((~is_signal).sum())
    a = auc(score, is_signal)
    out = {"n_signal": n_s, "n_background": n_b, "auc": a, "auc_error": auc_error(a, n_s, n_b), "rejection": {}}
    for eff in EFFICIENCIES:
        out["rejection"][f"{eff:.1f}"] = rejection_at(score, is_signal, eff)
    rows = []
    for lo, hi in itertools.pairwise(pt_bins):
        sel = (pt >= lo) & (pt < hi)
        r = rejection_at(score[sel], is_signal[sel], 0.5) if sel.any() else {"rejection": float("nan")}
        rows.append({"pt_low": float(lo), "pt_high": float(hi), "n_jets": int(sel.sum()), **r})
    out["rejection_vs_pt_at_0.5"] = rows
    return out


def aux_metrics(pred: Predictions) -> dict:
    """Track-origin classification and vertex finding, for models with those auxiliary tasks."""
    from ai4hep.models.tasks import ORIGIN_CLASSES

    out = {}
    if "origin_probs" in pred.aux:
        out["track_origin"] = origin_metrics(
            pred.aux["origin_probs"].argmax(-1), pred.truth["origin"], pred.mask, ORIGIN_CLASSES
        )
    if "vertex_probs" in pred.aux:
        out["vertexing"] = vertex_metrics(pred.aux["vertex_probs"], pred.truth["vertex"], pred.mask, pred.labels)
    return out


def compute_metrics(pred: Predictions, background: int = 0, f_c: float = F_C, f_b: float = F_B) -> dict:
    probs, labels, pt = pred.probs, pred.labels, pred.pt
    pt_bins = np.unique(np.quantile(pt, np.linspace(0, 1, 6))) if len(pt) else np.array([0.0, 1.0])
    pt_bins[-1] = np.nextafter(pt_bins[-1], np.inf)
    out: dict = {
        "model": pred.name,
        "n_jets": len(labels),
        "classes": pred.classes,
        "accuracy": accuracy(probs, labels),
    }
    if len(pred.classes) == 2:
        ((_, score, is_signal, _),) = against_background(probs, labels, background)
        out.update(binary_metrics(score, is_signal, pt, pt_bins))
        return out
    if pred.classes == FLAVOUR_CLASSES:
        out["flavour"] = flavour_metrics(probs, labels, pt, f_c=f_c, f_b=f_b)
        out.update(aux_metrics(pred))
    out["auc_one_vs_rest"] = {c: auc(probs[:, k], labels == k) for k, c in enumerate(pred.classes)}
    conf = np.zeros((len(pred.classes),) * 2, dtype=np.int64)
    np.add.at(conf, (labels, probs.argmax(1)), 1)
    out["confusion_matrix"] = conf.tolist()
    out["vs_background"] = {
        pred.classes[k]: binary_metrics(score, is_signal, pt[sel], pt_bins)
        for k, score, is_signal, sel in against_background(probs, labels, background)
    }
    return out


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return _finite(obj)
    return obj


def write_predictions(path: Path, pred: Predictions) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("probs", data=pred.probs.astype(np.float32), compression="gzip")
        f.create_dataset("label", data=pred.labels)
        f.create_dataset("pt", data=pred.pt)
        for name, values in pred.aux.items():  # one dataset per auxiliary task, padded to max_objects
            f.create_dataset(name, data=values.astype(np.float32), compression="gzip")
        f.attrs["classes"] = json.dumps(pred.classes)
        f.attrs["model"] = pred.name


def evaluate(
    run: Path,
    data: list[Path] | None,
    out: Path | None = None,
    reference: Path | None = None,
    f_c: float = F_C,
    f_b: float = F_B,
) -> dict:
    """Predict on every shard of `data` (default: the run's test split), write metrics.json, predictions.h5 and
    plots; returns the metrics. f_c and f_b are the flavour discriminants' fractions (b/c/light taggers only)."""
    from ai4hep.plots.roc import plot_confusion, plot_rejection_vs_pt, plot_roc

    tagger = TrainedRun(run)
    files = tagger.files(data)
    out = Path(out) if out else Path(run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pred = tagger.predict(files)
    seconds = time.perf_counter() - start
    metrics = compute_metrics(pred, f_c=f_c, f_b=f_b)
    metrics["data"] = [str(f) for f in files]
    metrics["inference_jets_per_s"] = len(pred.labels) / max(seconds, 1e-9)  # reading and preprocessing included
    ref_pred = None
    if reference is not None:
        ref = TrainedRun(reference)
        if ref.classes != tagger.classes:
            raise UserError(f"reference run {reference} has classes {ref.classes}, not {tagger.classes}")
        ref_pred = ref.predict(files)
        metrics["reference"] = compute_metrics(ref_pred, f_c=f_c, f_b=f_b)
    if pred.classes == FLAVOUR_CLASSES:
        plots = _flavour_plots(pred, ref_pred, out, f_c)
    else:
        plots = [plot_roc(pred, ref_pred, out / "roc.png"), plot_rejection_vs_pt(metrics, out / "rejection_vs_pt.png")]
    if len(pred.classes) > 2:
        plots.append(plot_confusion(metrics, out / "confusion.png"))
    metrics["plots"] = [str(p) for p in plots]
    write_predictions(out / "predictions.h5", pred)
    metrics = _clean(metrics)
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _rej(r: dict) -> str:
    """A rejection with its error, or its lower limit when no background passed."""
    if r.get("rejection") is None:
        return f"> {r.get('lower_limit') or 0:.0f}"
    return f"{r['rejection']:.1f} ± {r['error']:.1f}"


def flavour_headline(m: dict) -> str:
    """b-tagging at the 70% working point, and the auxiliary tasks when present."""
    wp = at_working_point(m["flavour"]["b_tagging"], 0.7)
    parts = [f"70% b-eff: light rej {_rej(wp['light'])}, c rej {_rej(wp['c'])}", f"acc {m['accuracy']:.4f}"]
    if "track_origin" in m:
        parts.append(f"track-origin acc {m['track_origin']['accuracy']:.3f}")
    if "vertexing" in m:
        v = m["vertexing"]
        parts.append(f"SV eff {v['efficiency'] or 0:.3f}, purity {v['purity'] or 0:.3f}")
    return "; ".join(parts) + f" ({m['n_jets']} jets)"


def _flavour_plots(pred: Predictions, ref: Predictions | None, out: Path, f_c: float) -> list[Path]:
    """puma-style plots: rejections vs b-efficiency and vs pT (ratio to the reference), f_c scan, D_b."""
    from ai4hep.plots import flavour as fp

    taggers = [(p.name, p.probs, p.labels, p.pt) for p in ((ref, pred) if ref is not None else (pred,))]
    reference = ref.name if ref is not None else None
    return [
        fp.plot_flavour_roc(taggers, out / "roc.png", reference=reference, f_c=f_c),
        fp.plot_rejection_vs_pt(taggers, out / "rejection_vs_pt.png", f_c=f_c, reference=reference),
        fp.plot_fc_scan(taggers, out / "fc_scan.png"),
        fp.plot_discriminant(pred.name, pred.probs, pred.labels, out / "discriminant_b.png", f_c=f_c),
    ]


def headline(m: dict) -> str:
    """One line for the terminal."""
    if "auc" in m:
        rej = m["rejection"]
        parts = [f"AUC {m['auc']:.4f} ± {m['auc_error']:.4f}", f"acc {m['accuracy']:.4f}"]
        parts += [f"1/eB@{eff} {_rej(rej[eff])}" for eff in ("0.3", "0.5", "0.7")]
        return f"{m['model']}: " + ", ".join(parts) + f" ({m['n_jets']} jets)"
    if "flavour" in m:
        return f"{m['model']}: " + flavour_headline(m)
    aucs = ", ".join(f"{c} {v:.3f}" for c, v in m["auc_one_vs_rest"].items() if v is not None)
    return f"{m['model']}: acc {m['accuracy']:.4f}; one-vs-rest AUC {aucs} ({m['n_jets']} jets)"
