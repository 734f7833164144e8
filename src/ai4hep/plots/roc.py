"""ROC (signal efficiency vs background rejection, log scale) with a ratio panel against a reference tagger."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.metrics.binary import against_background, roc_curve


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _curves(pred, background: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per signal class: (eps_S grid, rejection) on a fixed efficiency grid, so curves can be divided."""
    grid = np.linspace(0.05, 1.0, 96)
    out = {}
    for k, score, is_signal, _ in against_background(pred.probs, pred.labels, background):
        eff_s, eff_b, _ = roc_curve(score, is_signal)
        with np.errstate(divide="ignore"):
            rej = 1.0 / np.interp(grid, eff_s, eff_b)
        out[pred.classes[k]] = (grid, rej)
    return out


def plot_roc(pred, reference=None, path: Path = Path("roc.png")) -> Path:
    curves = _curves(pred)
    ref = _curves(reference) if reference is not None else None
    if ref is not None:
        fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    else:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    bkg = pred.classes[0]
    for name, (x, rej) in curves.items():
        (line,) = ax.plot(x, rej, label=f"{pred.name}: {name} vs {bkg}")
        if ref is not None:
            ax.plot(*ref[name], ls="--", color=line.get_color(), label=f"{reference.name} (reference)")
            with np.errstate(divide="ignore", invalid="ignore"):
                rax.plot(x, rej / ref[name][1], color=line.get_color())
    ax.set_yscale("log")
    ax.set_ylabel("background rejection 1/eps_B")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    bottom = rax if ref is not None else ax
    if ref is not None:
        rax.axhline(1.0, color="grey", lw=1)
        rax.set_ylabel(f"ratio to {reference.name}", fontsize=8)
        rax.grid(alpha=0.3)
    bottom.set_xlabel("signal efficiency eps_S")
    bottom.set_xlim(0.05, 1.0)
    fig.tight_layout()
    return _save(fig, path)


def plot_rejection_vs_pt(metrics: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    series = {metrics["classes"][1]: metrics} if "auc" in metrics else metrics["vs_background"]
    for name, m in series.items():
        rows = m["rejection_vs_pt_at_0.5"]
        centres = [(r["pt_low"] + r["pt_high"]) / 2 for r in rows]
        widths = [(r["pt_high"] - r["pt_low"]) / 2 for r in rows]
        rej = [r["rejection"] if r.get("rejection") is not None else np.nan for r in rows]
        err = [r.get("error") if r.get("error") is not None else 0.0 for r in rows]
        ax.errorbar(centres, rej, xerr=widths, yerr=err, fmt="o", label=f"{name} (eps_S = 0.5 per bin)")
    ax.set_xlabel("jet pT [GeV]")
    ax.set_ylabel(f"{metrics['classes'][0]} rejection")
    ax.set_title(metrics["model"])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(metrics: dict, path: Path) -> Path:
    conf = np.asarray(metrics["confusion_matrix"], float)
    norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = metrics["classes"]
    ax.set_xticks(range(len(names)), names, rotation=45)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, label="fraction of true class")
    fig.tight_layout()
    return _save(fig, path)
