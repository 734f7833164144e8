"""`ai4hep evaluate RUN --data PATHS`: predictions, metrics.json and plots for a trained run.

Binary tasks: AUC (Hanley-McNeil error), accuracy, rejection 1/eps_B at eps_S = 0.3, 0.5, 0.7 (binomial errors),
rejection vs jet pT at fixed signal efficiency per bin. Multi-class: one-vs-rest AUC, accuracy, confusion matrix,
and each class against the background class with the discriminant p_k / (p_k + p_bkg) (the JetClass convention).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.data.inspect import dataset_files
from ai4hep.data.loader import InputSpec, JetStream, Normalisation
from ai4hep.errors import UserError
from ai4hep.metrics.binary import accuracy, against_background, auc, auc_error, rejection_at
from ai4hep.train.card import write_json_atomic

EFFICIENCIES = (0.3, 0.5, 0.7)


@dataclass
class Predictions:
    probs: np.ndarray
    labels: np.ndarray
    pt: np.ndarray
    classes: list[str]
    name: str


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
        self.spec = InputSpec(self.cfg.data, extras=self.entry.extras if self.entry.kind == "torch" else ())
        self.norm = Normalisation.from_dict(self.pre["normalisation"])
        self._load()

    def _load(self) -> None:
        if self.entry.kind == "bdt":
            from ai4hep.models.bdt import BDT

            path = self.path / "model.txt"
            try:
                self.model = BDT.load(path, self.entry.parse_params(self.cfg.model.params), len(self.classes))
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

    def stream(self, files: list[Path]) -> JetStream:
        return JetStream(files, self.spec, len(self.classes), self.norm)

    def probabilities(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities of one batch, from the trees or from the network's softmax."""
        if self.entry.kind == "bdt":
            return self.model.predict_proba(batch["jet"])
        import torch

        from ai4hep.train.module import model_inputs

        with torch.no_grad():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            return torch.softmax(self.model(**model_inputs(self.model, tensors)), -1).numpy()

    def predict(self, files: list[Path]) -> Predictions:
        probs, labels, pt = [], [], []
        for batch in self.stream(files):
            probs.append(self.probabilities(batch))
            labels.append(batch["label"])
            pt.append(batch["pt"])
        return Predictions(np.concatenate(probs), np.concatenate(labels), np.concatenate(pt), self.classes, self.name)


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


def compute_metrics(pred: Predictions, background: int = 0) -> dict:
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
        f.attrs["classes"] = json.dumps(pred.classes)
        f.attrs["model"] = pred.name


def evaluate(run: Path, data: list[Path] | None, out: Path | None = None, reference: Path | None = None) -> dict:
    """Predict on every shard of `data` (default: the run's test split), write metrics.json, predictions.h5 and
    plots; returns the metrics."""
    from ai4hep.plots.roc import plot_confusion, plot_rejection_vs_pt, plot_roc

    tagger = TrainedRun(run)
    if data:
        files = [f for p in data for f in dataset_files(Path(p))]
    else:
        files = [Path(s["file"]) for s in tagger.card["dataset"]["shards"]["test"]]
        if not files:
            raise UserError(f"{run} was trained without a test split; pass --data PATHS")
    out = Path(out) if out else Path(run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    pred = tagger.predict(files)
    metrics = compute_metrics(pred)
    metrics["data"] = [str(f) for f in files]
    ref_pred = None
    if reference is not None:
        ref = TrainedRun(reference)
        if ref.classes != tagger.classes:
            raise UserError(f"reference run {reference} has classes {ref.classes}, not {tagger.classes}")
        ref_pred = ref.predict(files)
        metrics["reference"] = compute_metrics(ref_pred)
    plots = [plot_roc(pred, ref_pred, out / "roc.png"), plot_rejection_vs_pt(metrics, out / "rejection_vs_pt.png")]
    if len(pred.classes) > 2:
        plots.append(plot_confusion(metrics, out / "confusion.png"))
    metrics["plots"] = [str(p) for p in plots]
    write_predictions(out / "predictions.h5", pred)
    metrics = _clean(metrics)
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def headline(m: dict) -> str:
    """One line for the terminal."""
    if "auc" in m:
        rej = m["rejection"]
        parts = [f"AUC {m['auc']:.4f} ± {m['auc_error']:.4f}", f"acc {m['accuracy']:.4f}"]
        for eff in ("0.3", "0.5", "0.7"):
            r = rej[eff]
            if r["rejection"] is None:
                parts.append(f"1/eB@{eff} > {r.get('lower_limit', 0):.0f}")
            else:
                parts.append(f"1/eB@{eff} {r['rejection']:.1f} ± {r['error']:.1f}")
        return f"{m['model']}: " + ", ".join(parts) + f" ({m['n_jets']} jets)"
    aucs = ", ".join(f"{c} {v:.3f}" for c, v in m["auc_one_vs_rest"].items() if v is not None)
    return f"{m['model']}: acc {m['accuracy']:.4f}; one-vs-rest AUC {aucs} ({m['n_jets']} jets)"
