"""Flavour-tagging plots in the puma style (mplhep ATLAS look): b-tagging ROCs (light and c rejection vs b efficiency,
log scale) with ratio panels against a reference tagger, rejection vs jet pT at a fixed inclusive working point, the
f_c scan and the D_b distributions.

A tagger is (name, probs, labels): probs (N, 3) with columns (p_u, p_c, p_b), labels light=0, c=1, b=2.
plot_rejection_vs_pt needs (name, probs, labels, pt) with pt in GeV; the other functions accept that form too, so one
list serves every plot.

Each plot_* function draws with the matching draw_* function (which returns the Figure) and saves it atomically.
Bands are the binomial errors of plots.style: r +- sigma_r around each rejection, (r / r_ref) * sigma_r / r around
each ratio (with ratio_band="combined" the reference's relative error added in quadrature), so the reference's own
ratio is 1 +- its relative error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ai4hep.metrics.flavour import (
    F_C,
    FLAVOURS,
    LIGHT,
    PT_BINS,
    WORKING_POINTS,
    B,
    C,
    discriminant_b,
    fc_scan,
    rejection_table,
    rejection_vs_pt,
)
from ai4hep.plots import style
from ai4hep.plots.style import Rejection

Tagger = tuple  # (name, probs, labels) or (name, probs, labels, pt)
BACKGROUNDS = {"light": LIGHT, "c": C}
LINESTYLE = {"light": "-", "c": "--"}


def _reference(taggers: Sequence[Tagger], reference: str | None) -> int:
    """Index of the reference tagger: the named one, else the first."""
    names = [t[0] for t in taggers]
    if not names:
        raise ValueError("no taggers to plot")
    if reference is None:
        return 0
    if reference not in names:
        raise ValueError(f"reference tagger {reference!r} is not among {names}")
    return names.index(reference)


def _check_band(ratio_band: str) -> None:
    if ratio_band not in style.RATIO_BANDS:
        raise ValueError(f"ratio_band must be one of {style.RATIO_BANDS}, got {ratio_band!r}")


def _roc(probs: np.ndarray, labels: np.ndarray, f_c: float, grid: np.ndarray) -> dict[str, Rejection]:
    """Light and c rejection of D_b on a common b-efficiency grid, each over the b jets and that background's jets."""
    disc, labels = discriminant_b(probs, f_c), np.asarray(labels)
    out = {}
    for bkg, k in BACKGROUNDS.items():
        sel = (labels == B) | (labels == k)
        out[bkg] = style.rejection_curve(disc[sel], labels[sel] == B, grid)
    return out


def draw_flavour_roc(
    taggers: list[Tagger],
    reference: str | None = None,
    f_c: float = F_C,
    eff_range: tuple[float, float] = (0.5, 1.0),
    ratio_band: str = "tagger",
) -> Figure:
    """Light (solid) and c (dashed) rejection vs b efficiency with bands, and one ratio panel per background.
    Line gids: "roc:<tagger>:<light|c>" and "ratio:<tagger>:<light|c>", bands the same + ":band"."""
    _check_band(ratio_band)
    ref = _reference(taggers, reference)
    grid = np.linspace(*eff_range, 101)
    curves = [_roc(t[1], t[2], f_c, grid) for t in taggers]
    with style.style():
        fig = style.figure((6, 7))
        ax, *rax = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]})
        for i, (tagger, rej) in enumerate(zip(taggers, curves, strict=True)):
            colour = f"C{i % 10}"
            for r, bkg in zip(rax, BACKGROUNDS, strict=True):
                c = rej[bkg]
                style.line_with_band(
                    ax, grid, c.rejection, c.error, f"roc:{tagger[0]}:{bkg}", color=colour, ls=LINESTYLE[bkg]
                )
                value, err = style.ratio(c, curves[ref][bkg], ratio_band)
                style.line_with_band(r, grid, value, err, f"ratio:{tagger[0]}:{bkg}", color=colour, ls=LINESTYLE[bkg])
        ax.set_yscale("log")
        ax.set_ylabel("background rejection")
        style.headroom(ax)
        # Two legends, as puma draws them: colours name the taggers, line styles the backgrounds.
        tagger_handles = [
            ax.plot([], [], color=f"C{i % 10}", label=t[0] + (" (reference)" if i == ref else ""))[0]
            for i, t in enumerate(taggers)
        ]
        bkg_handles = [ax.plot([], [], color="k", ls=LINESTYLE[b], label=f"{b}-jet rejection")[0] for b in BACKGROUNDS]
        first = ax.legend(handles=tagger_handles, fontsize=8, loc="upper right")
        ax.add_artist(first)
        ax.legend(handles=bkg_handles, fontsize=8, loc="lower left")
        style.label(ax, f"$f_c$ = {f_c:g}")
        for r, bkg in zip(rax, BACKGROUNDS, strict=True):
            style.ratio_axis(r, f"{bkg} rej. / {taggers[ref][0]}")
        rax[-1].set_xlabel("b-jet efficiency $\\varepsilon_b$")
        rax[-1].set_xlim(*eff_range)
    return fig


def plot_flavour_roc(
    taggers: list[Tagger],
    out: Path,
    reference: str | None = None,
    f_c: float = F_C,
    eff_range: tuple[float, float] = (0.5, 1.0),
    ratio_band: str = "tagger",
) -> Path:
    return style.save(draw_flavour_roc(taggers, reference, f_c, eff_range, ratio_band), out)


def _rejections(rows: list[dict], bkg: str) -> tuple[np.ndarray, np.ndarray]:
    """(rejection, error) per pT bin; NaN where no background jet passed (only a lower limit is known)."""
    rej = np.array([r[bkg]["rejection"] for r in rows], float)
    err = np.array([r[bkg]["error"] for r in rows], float)
    bad = ~np.isfinite(rej)
    rej[bad], err[bad] = np.nan, np.nan
    return rej, err


def draw_rejection_vs_pt(
    taggers: list[Tagger],
    working_point: float = 0.7,
    f_c: float = F_C,
    pt_bins: Sequence[float] | None = None,
    reference: str | None = None,
    ratio_band: str = "tagger",
) -> Figure:
    """Light (left) and c (right) rejection per pT bin at one inclusive cut: a flat line over each bin with its
    binomial error as a shaded box, and below the ratio to the reference, likewise. Gids as in draw_flavour_roc
    with "rejection_vs_pt" for "roc"."""
    _check_band(ratio_band)
    ref = _reference(taggers, reference)
    if any(len(t) < 4 for t in taggers):
        raise ValueError("plot_rejection_vs_pt needs taggers as (name, probs, labels, pt)")
    bins = PT_BINS if pt_bins is None else pt_bins
    rows = [
        rejection_vs_pt(discriminant_b(p, f_c), lab, pt, bins, working_point, B)["bins"] for _, p, lab, pt in taggers
    ]
    with style.style():
        fig = style.figure((11, 5.5))
        axes = fig.subplots(2, 2, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        for col, bkg in enumerate(BACKGROUNDS):
            top, bottom = axes[0, col], axes[1, col]
            ref_values = np.column_stack(_rejections(rows[ref], bkg))
            ref_rej = {r["pt_low"]: v for r, v in zip(rows[ref], ref_values, strict=True)}
            for i, (tagger, tr) in enumerate(zip(taggers, rows, strict=True)):
                colour = f"C{i % 10}"
                low, high = style.bin_edges(tr)
                rej, err = _rejections(tr, bkg)
                x, y = style.steps(low, high, rej)
                _, e = style.steps(low, high, err)
                label = tagger[0] + (" (reference)" if i == ref else "")
                style.line_with_band(top, x, y, e, f"rejection_vs_pt:{tagger[0]}:{bkg}", color=colour, label=label)
                matched = np.array([ref_rej.get(r["pt_low"], (np.nan, np.nan)) for r in tr], float).reshape(-1, 2)
                value, verr = style.ratio_values(rej, err, matched[:, 0], matched[:, 1], ratio_band, i == ref)
                x, y = style.steps(low, high, value)
                _, e = style.steps(low, high, verr)
                style.line_with_band(bottom, x, y, e, f"ratio:{tagger[0]}:{bkg}", color=colour)
            top.set_yscale("log")
            top.set_ylabel(f"{bkg}-jet rejection")
            style.headroom(top)
            top.legend(fontsize=8, loc="upper right")
            style.label(top, f"{working_point:.0%} inclusive b-jet WP, $f_c$ = {f_c:g}")
            style.ratio_axis(bottom, f"ratio to {taggers[ref][0]}")
            bottom.set_xlabel("jet $p_T$ [GeV]")
    return fig


def plot_rejection_vs_pt(
    taggers: list[Tagger],
    out: Path,
    working_point: float = 0.7,
    f_c: float = F_C,
    pt_bins: Sequence[float] | None = None,
    reference: str | None = None,
    ratio_band: str = "tagger",
) -> Path:
    return style.save(draw_rejection_vs_pt(taggers, working_point, f_c, pt_bins, reference, ratio_band), out)


def draw_fc_scan(taggers: list[Tagger], working_point: float = 0.7, f_c: float = F_C) -> Figure:
    """c vs light rejection of D_b at one working point as f_c runs over [0, 1]; the star marks `f_c`."""
    with style.style():
        fig = style.figure((6, 5))
        ax = fig.subplots()
        for i, (name, probs, labels, *_) in enumerate(taggers):
            scan = fc_scan(probs, labels, working_point=working_point)
            light, c = ([r[bkg]["rejection"] for r in scan] for bkg in BACKGROUNDS)
            ax.plot(light, c, "-o", ms=3, color=f"C{i % 10}", label=name, gid=f"fc_scan:{name}")
            (mark,) = fc_scan(probs, labels, (f_c,), working_point)
            ax.plot(mark["light"]["rejection"], mark["c"]["rejection"], "*", ms=14, color=f"C{i % 10}", mec="k")
            for r in (scan[0], scan[-1]):
                xy = (r["light"]["rejection"], r["c"]["rejection"])
                if np.all(np.isfinite(xy)):
                    ax.annotate(f"$f_c$={r['f_c']:g}", xy, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("light-jet rejection")
        ax.set_ylabel("c-jet rejection")
        style.headroom(ax, log=False)
        ax.legend(fontsize=8, loc="upper right")
        style.label(ax, f"{working_point:.0%} b-jet WP, star: $f_c$ = {f_c:g}")
    return fig


def plot_fc_scan(taggers: list[Tagger], out: Path, working_point: float = 0.7, f_c: float = F_C) -> Path:
    return style.save(draw_fc_scan(taggers, working_point, f_c), out)


def draw_discriminant(name: str, probs: np.ndarray, labels: np.ndarray, f_c: float = F_C) -> Figure:
    """Normalised D_b per flavour, with the cuts of the standard working points; over/underflow fill the edge bins."""
    disc, labels = discriminant_b(probs, f_c), np.asarray(labels)
    lo, hi = np.quantile(disc, [0.001, 0.999])
    bins = np.linspace(lo, hi, 61)
    with style.style():
        fig = style.figure((6, 5))
        ax = fig.subplots()
        heights = []
        for k, flavour in enumerate(FLAVOURS):
            d = disc[labels == k]
            if len(d):
                h, *_ = ax.hist(
                    np.clip(d, lo, hi), bins=bins, density=True, histtype="step", lw=1.5, label=f"{flavour} jets"
                )
                heights.append(h[h > 0])
        for row in rejection_table(disc, labels, B, WORKING_POINTS):
            if np.isfinite(row["cut"]):
                ax.axvline(row["cut"], color="grey", ls=":", lw=1)
                ax.text(
                    row["cut"],
                    0.02,
                    f"{row['working_point']:.0%}",
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    va="bottom",
                    ha="right",
                    fontsize=7,
                )
        ax.set_yscale("log")
        ax.set_xlabel(f"$D_b$ ($f_c$ = {f_c:g})")
        ax.set_ylabel("normalised number of jets")
        style.headroom(ax, values=np.concatenate(heights) if heights else None)
        ax.legend(fontsize=8, loc="upper right")
        style.label(ax, name)
    return fig


def plot_discriminant(name: str, probs: np.ndarray, labels: np.ndarray, out: Path, f_c: float = F_C) -> Path:
    return style.save(draw_discriminant(name, probs, labels, f_c), out)
