"""ROC (signal efficiency vs background rejection, log scale) with a ratio panel against a reference tagger, rejection
vs jet pT and the confusion matrix, in the mplhep ATLAS style.

Each plot_* function builds its figure with the matching draw_* function (which returns the Figure, for notebooks and
tests) and saves it atomically. Bands are the binomial errors of plots.style: around each rejection curve
r +- sigma_r, around each ratio (r / r_ref) * sigma_r / r, around 1 the reference's relative error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ai4hep.metrics.binary import against_background
from ai4hep.plots import style
from ai4hep.plots.style import Rejection

GRID = np.linspace(0.05, 1.0, 96)  # signal efficiencies the curves are evaluated at (so they can be divided)


def _curves(pred, background: int = 0) -> dict[str, Rejection]:
    """Per signal class: rejection of the background class on GRID."""
    return {
        pred.classes[k]: style.rejection_curve(score, is_signal, GRID)
        for k, score, is_signal, _ in against_background(pred.probs, pred.labels, background)
    }


def draw_roc(pred, reference=None, ratio_band: str = "tagger") -> Figure:
    """Rejection of classes[0] vs each signal class's efficiency; with `reference` (the same jets scored by another
    tagger) its curves dashed and a ratio panel pred / reference. Line gids: "roc:<model>:<class>",
    "ratio:<model>:<class>", bands the same + ":band"."""
    if ratio_band not in style.RATIO_BANDS:
        raise ValueError(f"ratio_band must be one of {style.RATIO_BANDS}, got {ratio_band!r}")
    curves = _curves(pred)
    ref = _curves(reference) if reference is not None else None
    bkg = pred.classes[0]
    with style.style():
        fig = style.figure((6, 6) if ref is not None else (6, 4.8))
        if ref is not None:
            ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        else:
            ax, rax = fig.subplots(), None
        for i, (name, curve) in enumerate(curves.items()):
            colour = f"C{i % 10}"
            x = curve.eff_s
            label = f"{pred.name}: {name}"
            style.line_with_band(
                ax, x, curve.rejection, curve.error, f"roc:{pred.name}:{name}", color=colour, label=label
            )
            if ref is None:
                continue
            r = ref[name]
            style.line_with_band(
                ax,
                x,
                r.rejection,
                r.error,
                f"roc:{reference.name}:{name}",
                color=colour,
                ls="--",
                label=f"{reference.name}: {name} (reference)",
            )
            for tagger, c, ls in ((reference.name, r, "--"), (pred.name, curve, "-")):
                value, err = style.ratio(c, r, ratio_band)
                style.line_with_band(rax, x, value, err, f"ratio:{tagger}:{name}", color=colour, ls=ls)
        ax.set_yscale("log")
        ax.set_ylabel(f"{bkg} rejection $1/\\varepsilon_B$")
        style.headroom(ax)
        ax.legend(fontsize=8, loc="upper right")
        style.label(ax, f"signal vs {bkg}")
        bottom = ax
        if rax is not None:
            style.ratio_axis(rax, f"ratio to {reference.name}")
            bottom = rax
        bottom.set_xlabel("signal efficiency $\\varepsilon_S$")
        bottom.set_xlim(GRID[0], GRID[-1])
    return fig


def plot_roc(pred, reference=None, path: Path = Path("roc.png"), ratio_band: str = "tagger") -> Path:
    return style.save(draw_roc(pred, reference, ratio_band=ratio_band), path)


def draw_rejection_vs_pt(metrics: dict) -> Figure:
    """Per signal class, the background rejection at eps_S = 0.5 in each pT bin: a flat line over the bin with its
    binomial error as a shaded box (gids "rejection_vs_pt:<class>" and + ":band")."""
    series = {metrics["classes"][1]: metrics} if "auc" in metrics else metrics["vs_background"]
    with style.style():
        fig = style.figure((6, 4.8))
        ax = fig.subplots()
        for i, (name, m) in enumerate(series.items()):
            rows = m["rejection_vs_pt_at_0.5"]
            low, high = style.bin_edges(rows)
            rej = np.array([r["rejection"] if r.get("rejection") is not None else np.nan for r in rows], float)
            err = np.array([r["error"] if r.get("error") is not None else np.nan for r in rows], float)
            rej[~np.isfinite(rej)] = np.nan  # no background passed: only a lower limit
            x, y = style.steps(low, high, rej)
            _, e = style.steps(low, high, err)
            label = f"{name} ($\\varepsilon_S$ = 0.5 per bin)"
            style.line_with_band(ax, x, y, e, f"rejection_vs_pt:{name}", color=f"C{i % 10}", label=label)
        ax.set_xlabel("jet $p_T$ [GeV]")
        ax.set_ylabel(f"{metrics['classes'][0]} rejection")
        style.headroom(ax, log=False)
        ax.legend(fontsize=8, loc="upper right")
        style.label(ax, metrics["model"])
    return fig


def plot_rejection_vs_pt(metrics: dict, path: Path) -> Path:
    return style.save(draw_rejection_vs_pt(metrics), path)


def draw_confusion(metrics: dict) -> Figure:
    """Row-normalised confusion matrix: the fraction of each true class predicted as each class."""
    conf = np.asarray(metrics["confusion_matrix"], float)
    norm = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    names = metrics["classes"]
    with style.style():
        fig = style.figure((6.5, 5.5))
        ax = fig.subplots()
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.minorticks_off()
        ax.tick_params(top=False, right=False)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(metrics.get("model", ""), fontsize=11)
        fig.colorbar(im, ax=ax, label="fraction of true class")
    return fig


def plot_confusion(metrics: dict, path: Path) -> Path:
    return style.save(draw_confusion(metrics), path)
