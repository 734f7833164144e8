"""What `ai4hep evaluate` computes, draws and puts on the leaderboard for each task, in a registry that the next areas
extend (a Task subclass and one line in TASKS).

- binary: AUC (Hanley-McNeil error), accuracy, rejection 1/eps_B at eps_S = 0.3, 0.5, 0.7 (binomial errors),
  rejection vs jet pT at eps_S = 0.5 per bin;
- multiclass: one-vs-rest AUC, accuracy, confusion matrix, and each class against the background class with the
  discriminant p_k / (p_k + p_bkg) (the JetClass convention);
- flavour: the multiclass numbers plus b-tagging and c-tagging (ai4hep.metrics.flavour) and the auxiliary
  track-origin and vertexing tasks when the model has them.
Metrics come from ai4hep.metrics (pure functions of arrays); plots from ai4hep.plots, drawn here, by the command.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ai4hep.data.cards import task_of
from ai4hep.data.labels import ORIGINS, is_flavour_classes
from ai4hep.errors import UserError
from ai4hep.evaluate.predictions import Predictions
from ai4hep.metrics.binary import accuracy, against_background, auc, auc_error, rejection_at
from ai4hep.metrics.flavour import F_B, F_C, at_working_point, flavour_metrics, origin_metrics, vertex_metrics

EFFICIENCIES = (0.3, 0.5, 0.7)


@dataclass(frozen=True)
class EvalOptions:
    background: int = 0  # the background class of the one-vs-background discriminants
    f_c: float = F_C  # c fraction in the b-tagging discriminant (flavour tagging)
    f_b: float = F_B  # b fraction in the c-tagging discriminant (flavour tagging)


Headline = tuple[dict[str, tuple[float | None, float | None]], str]


def _rej(r: dict) -> str:
    """A rejection with its error, or its lower limit when no background passed."""
    if r.get("rejection") is None:
        return f"> {r.get('lower_limit') or 0:.0f}"
    return f"{r['rejection']:.1f} ± {r['error']:.1f}"


def _rej_value(r: dict) -> tuple[float | None, float | None]:
    value = r.get("rejection")
    return (value, r.get("error")) if value is not None and np.isfinite(value) else (None, None)


def _accuracy_entry(m: dict) -> dict[str, tuple[float | None, float | None]]:
    acc = m["accuracy"]
    return {"accuracy": (acc, float(np.sqrt(acc * (1 - acc) / max(m["n_jets"], 1))))}


def binary_metrics(
    score: np.ndarray, is_signal: np.ndarray, pt: np.ndarray, pt_bins: np.ndarray, weights: np.ndarray | None = None
) -> dict:
    """AUC, rejections at EFFICIENCIES and rejection vs pT at eps_S = 0.5; `weights` (one per jet) weight every
    efficiency, and the errors then use effective counts (ai4hep.metrics.binary)."""
    n_s, n_b = int(is_signal.sum()), int((~is_signal).sum())
    w = {"weights": weights}
    a = auc(score, is_signal, **w)
    err = auc_error(a, n_s, n_b, **w, **({"is_signal": is_signal} if weights is not None else {}))
    out = {"n_signal": n_s, "n_background": n_b, "auc": a, "auc_error": err, "rejection": {}}
    for eff in EFFICIENCIES:
        out["rejection"][f"{eff:.1f}"] = rejection_at(score, is_signal, eff, **w)
    rows = []
    for lo, hi in itertools.pairwise(pt_bins):
        sel = (pt >= lo) & (pt < hi)
        wb = {"weights": weights[sel] if weights is not None else None}
        r = rejection_at(score[sel], is_signal[sel], 0.5, **wb) if sel.any() else {"rejection": float("nan")}
        rows.append({"pt_low": float(lo), "pt_high": float(hi), "n_jets": int(sel.sum()), **r})
    out["rejection_vs_pt_at_0.5"] = rows
    return out


def signal_classes(pred: Predictions, background: int):
    """(class k, score, is_signal, selected jets, their weights or None) per signal class (against_background)."""
    if pred.weights is None:
        for k, score, is_signal, sel in against_background(pred.probs, pred.labels, background):
            yield k, score, is_signal, sel, None
    else:
        yield from against_background(pred.probs, pred.labels, background, weights=pred.weights)


def _pt_bins(pt: np.ndarray) -> np.ndarray:
    """Five bins of equal jet counts in pT (the last edge just above the highest jet)."""
    pt_bins = np.unique(np.quantile(pt, np.linspace(0, 1, 6))) if len(pt) else np.array([0.0, 1.0])
    pt_bins[-1] = np.nextafter(pt_bins[-1], np.inf)
    return pt_bins


def _common(pred: Predictions) -> dict:
    return {
        "model": pred.name,
        "n_jets": len(pred.labels),
        "classes": pred.classes,
        "accuracy": accuracy(pred.probs, pred.labels, weights=pred.weights),
    }


class Task:
    """One task's metrics, terminal line, plots and leaderboard entries."""

    name: ClassVar[str] = ""

    def accepts(self, classes: list[str]) -> bool:
        """Whether runs on a dataset with these classes can be evaluated as this task."""
        return True

    def metrics(self, pred: Predictions, options: EvalOptions) -> dict:
        raise NotImplementedError

    def headline(self, m: dict) -> str:
        raise NotImplementedError

    def plots(self, pred: Predictions, ref: Predictions | None, m: dict, out: Path, options: EvalOptions) -> list[Path]:
        raise NotImplementedError

    def leaderboard(self, m: dict) -> Headline:
        """(value, statistical error) per headline metric, and the leaderboard's primary metric."""
        raise NotImplementedError


class BinaryTask(Task):
    name = "binary"

    def accepts(self, classes: list[str]) -> bool:
        return len(classes) == 2

    def metrics(self, pred: Predictions, options: EvalOptions) -> dict:
        out = _common(pred)
        ((_, score, is_signal, _, w),) = signal_classes(pred, options.background)
        out.update(binary_metrics(score, is_signal, pred.pt, _pt_bins(pred.pt), w))
        return out

    def headline(self, m: dict) -> str:
        rej = m["rejection"]
        parts = [f"AUC {m['auc']:.4f} ± {m['auc_error']:.4f}", f"acc {m['accuracy']:.4f}"]
        parts += [f"1/eB@{eff} {_rej(rej[eff])}" for eff in ("0.3", "0.5", "0.7")]
        return f"{m['model']}: " + ", ".join(parts) + f" ({m['n_jets']} jets)"

    def plots(self, pred: Predictions, ref: Predictions | None, m: dict, out: Path, options: EvalOptions) -> list[Path]:
        from ai4hep.plots.roc import plot_rejection_vs_pt, plot_roc

        return [plot_roc(pred, ref, out / "roc.png"), plot_rejection_vs_pt(m, out / "rejection_vs_pt.png")]

    def leaderboard(self, m: dict) -> Headline:
        out = _accuracy_entry(m)
        out["auc"] = (m["auc"], m["auc_error"])
        for eff in ("0.3", "0.5"):
            out[f"rejection@{eff}"] = _rej_value(m["rejection"][eff])
        return out, "auc"


class MulticlassTask(Task):
    name = "multiclass"

    def accepts(self, classes: list[str]) -> bool:
        return len(classes) > 2

    def metrics(self, pred: Predictions, options: EvalOptions) -> dict:
        out = _common(pred)
        out.update(self._multiclass(pred, options))
        return out

    @staticmethod
    def _multiclass(pred: Predictions, options: EvalOptions) -> dict:
        probs, labels, pt, w = pred.probs, pred.labels, pred.pt, pred.weights
        pt_bins = _pt_bins(pt)
        conf = np.zeros((len(pred.classes),) * 2, dtype=np.int64 if w is None else np.float64)
        np.add.at(conf, (labels, probs.argmax(1)), 1 if w is None else w)  # weighted: sums of weights
        return {
            "auc_one_vs_rest": {c: auc(probs[:, k], labels == k, weights=w) for k, c in enumerate(pred.classes)},
            "confusion_matrix": conf.tolist(),
            "vs_background": {
                pred.classes[k]: binary_metrics(score, is_signal, pt[sel], pt_bins, wk)
                for k, score, is_signal, sel, wk in signal_classes(pred, options.background)
            },
        }

    def headline(self, m: dict) -> str:
        aucs = ", ".join(f"{c} {v:.3f}" for c, v in m["auc_one_vs_rest"].items() if v is not None)
        return f"{m['model']}: acc {m['accuracy']:.4f}; one-vs-rest AUC {aucs} ({m['n_jets']} jets)"

    def plots(self, pred: Predictions, ref: Predictions | None, m: dict, out: Path, options: EvalOptions) -> list[Path]:
        from ai4hep.plots.roc import plot_confusion, plot_rejection_vs_pt, plot_roc

        return [
            plot_roc(pred, ref, out / "roc.png"),
            plot_rejection_vs_pt(m, out / "rejection_vs_pt.png"),
            plot_confusion(m, out / "confusion.png"),
        ]

    def leaderboard(self, m: dict) -> Headline:
        out = _accuracy_entry(m)
        aucs = [v for v in m["auc_one_vs_rest"].values() if v is not None]
        out["mean_auc"] = (float(np.mean(aucs)) if aucs else None, None)
        return out, "accuracy"


class FlavourTask(MulticlassTask):
    name = "flavour"

    def accepts(self, classes: list[str]) -> bool:
        return is_flavour_classes(classes)

    def metrics(self, pred: Predictions, options: EvalOptions) -> dict:
        out = _common(pred)
        out["flavour"] = flavour_metrics(
            pred.probs, pred.labels, pred.pt, f_c=options.f_c, f_b=options.f_b, weights=pred.weights
        )
        out.update(aux_metrics(pred))
        out.update(self._multiclass(pred, options))
        return out

    def headline(self, m: dict) -> str:
        return f"{m['model']}: " + flavour_headline(m)

    def plots(self, pred: Predictions, ref: Predictions | None, m: dict, out: Path, options: EvalOptions) -> list[Path]:
        """puma-style plots: rejections vs b-efficiency and vs pT (ratio to the reference), f_c scan, D_b."""
        from ai4hep.plots import flavour as fp
        from ai4hep.plots.roc import plot_confusion

        taggers = [(p.name, p.probs, p.labels, p.pt) for p in ((ref, pred) if ref is not None else (pred,))]
        reference = ref.name if ref is not None else None
        return [
            fp.plot_flavour_roc(taggers, out / "roc.png", reference=reference, f_c=options.f_c),
            fp.plot_rejection_vs_pt(taggers, out / "rejection_vs_pt.png", f_c=options.f_c, reference=reference),
            fp.plot_fc_scan(taggers, out / "fc_scan.png"),
            fp.plot_discriminant(pred.name, pred.probs, pred.labels, out / "discriminant_b.png", f_c=options.f_c),
            plot_confusion(m, out / "confusion.png"),
        ]

    def leaderboard(self, m: dict) -> Headline:
        out = _accuracy_entry(m)
        wp = at_working_point(m["flavour"]["b_tagging"], 0.7)
        out["light_rejection@0.7"] = _rej_value(wp["light"])
        out["c_rejection@0.7"] = _rej_value(wp["c"])
        return out, "light_rejection@0.7"


def aux_metrics(pred: Predictions) -> dict:
    """Track-origin classification and vertex finding, for models with those auxiliary tasks."""
    out = {}
    if "origin_probs" in pred.aux:
        out["track_origin"] = origin_metrics(
            pred.aux["origin_probs"].argmax(-1), pred.truth["origin"], pred.mask, ORIGINS, weights=pred.weights
        )
    if "vertex_probs" in pred.aux:
        out["vertexing"] = vertex_metrics(
            pred.aux["vertex_probs"], pred.truth["vertex"], pred.mask, pred.labels, weights=pred.weights
        )
    return out


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


TASKS: dict[str, Task] = {t.name: t for t in (BinaryTask(), MulticlassTask(), FlavourTask())}


def get_task(name: str | None, classes: list[str]) -> Task:
    """The task registered as `name` (a run's recorded task), else the one its classes call for."""
    if name is None:
        name = task_of({"classes": list(classes)})
    if name not in TASKS:
        raise UserError(f"no evaluation is registered for task '{name}'; known tasks: {', '.join(TASKS)}")
    task = TASKS[name]
    if not task.accepts(classes):
        raise UserError(f"task '{name}' cannot evaluate a dataset with classes {classes}")
    return task


def task_of_metrics(m: dict) -> Task:
    """The task that produced a metrics.json (its `task` key; older files: from their contents)."""
    if "task" in m:
        return get_task(m["task"], m["classes"])
    return TASKS["flavour"] if "flavour" in m else TASKS["binary"] if "auc" in m else TASKS["multiclass"]
