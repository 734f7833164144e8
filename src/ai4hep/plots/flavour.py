"""Flavour-tagging plots in the puma style: b-tagging ROCs (light and c rejection vs b efficiency, log scale) with ratio
panels against a reference tagger, rejection vs jet pT at a fixed inclusive working point, the f_c scan and the D_b
distributions.

A tagger is (name, probs, labels): probs (N, 3) with columns (p_u, p_c, p_b), labels light=0, c=1, b=2.
plot_rejection_vs_pt needs (name, probs, labels, pt) with pt in GeV; the other functions accept that form too, so one
list serves every plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.metrics.binary import roc_curve
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

Tagger = tuple  # (name, probs, labels) or (name, probs, labels, pt)
BACKGROUNDS = {"light": LIGHT, "c": C}
LINESTYLE = {"light": "-", "c": "--"}


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


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


def _ratio_axis(ax, bkg: str, ref_name: str) -> None:
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_ylabel(f"{bkg} rej. / {ref_name}", fontsize=8)
    ax.grid(alpha=0.3)


def _roc(probs: np.ndarray, labels: np.ndarray, f_c: float, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Light and c rejection of D_b on a common b-efficiency grid (interpolated), so taggers can be divided."""
    disc, labels = discriminant_b(probs, f_c), np.asarray(labels)
    out = {}
    for bkg, k in BACKGROUNDS.items():
        sel = (labels == B) | (labels == k)
        eff_b, eff_bkg, _ = roc_curve(disc[sel], labels[sel] == B)
        with np.errstate(divide="ignore"):
            out[bkg] = 1.0 / np.interp(grid, eff_b, eff_bkg)
    return out


def plot_flavour_roc(
    taggers: list[Tagger],
    out: Path,
    reference: str | None = None,
    f_c: float = F_C,
    eff_range: tuple[float, float] = (0.5, 1.0),
) -> Path:
    ref = _reference(taggers, reference)
    grid = np.linspace(*eff_range, 101)
    curves = [_roc(t[1], t[2], f_c, grid) for t in taggers]
    fig, (ax, *rax) = plt.subplots(3, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]})
    for i, (tagger, rej) in enumerate(zip(taggers, curves, strict=True)):
        for r, bkg in zip(rax, BACKGROUNDS, strict=True):
            ax.plot(grid, rej[bkg], color=f"C{i}", ls=LINESTYLE[bkg], label=f"{tagger[0]}: {bkg} rejection")
            with np.errstate(divide="ignore", invalid="ignore"):
                r.plot(grid, rej[bkg] / curves[ref][bkg], color=f"C{i}", ls=LINESTYLE[bkg])
    ax.set_yscale("log")
    ax.set_ylabel("background rejection")
    ax.set_title(f"b-tagging, f_c = {f_c:g}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for r, bkg in zip(rax, BACKGROUNDS, strict=True):
        _ratio_axis(r, bkg, taggers[ref][0])
    rax[-1].set_xlabel("b-jet efficiency")
    rax[-1].set_xlim(*eff_range)
    fig.tight_layout()
    return _save(fig, out)


def _points(rows: list[dict], bkg: str) -> tuple[np.ndarray, ...]:
    """(pT, pT error bars, rejection, error) per bin; the open last bin gets a symmetric bar."""
    x = np.array([r["pt_mean"] for r in rows])
    lo = x - np.array([r["pt_low"] for r in rows])
    hi = np.array([r["pt_high"] for r in rows]) - x
    hi = np.where(np.isfinite(hi), hi, lo)
    rej = np.array([r[bkg]["rejection"] for r in rows])
    err = np.nan_to_num(np.array([r[bkg]["error"] for r in rows]))
    return x, np.vstack([lo, hi]), rej, err


def plot_rejection_vs_pt(
    taggers: list[Tagger],
    out: Path,
    working_point: float = 0.7,
    f_c: float = F_C,
    pt_bins: Sequence[float] | None = None,
    reference: str | None = None,
) -> Path:
    ref = _reference(taggers, reference)
    if any(len(t) < 4 for t in taggers):
        raise ValueError("plot_rejection_vs_pt needs taggers as (name, probs, labels, pt)")
    bins = PT_BINS if pt_bins is None else pt_bins
    rows = [
        rejection_vs_pt(discriminant_b(p, f_c), lab, pt, bins, working_point, B)["bins"] for _, p, lab, pt in taggers
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for col, bkg in enumerate(BACKGROUNDS):
        ref_rej = {r["pt_low"]: r[bkg]["rejection"] for r in rows[ref]}
        for i, (tagger, tr) in enumerate(zip(taggers, rows, strict=True)):
            x, xerr, rej, err = _points(tr, bkg)
            axes[0, col].errorbar(x, rej, yerr=err, xerr=xerr, fmt="o", ms=4, color=f"C{i}", label=tagger[0])
            den = np.array([ref_rej.get(r["pt_low"], np.nan) for r in tr])
            with np.errstate(divide="ignore", invalid="ignore"):
                axes[1, col].errorbar(x, rej / den, yerr=err / den, xerr=xerr, fmt="o", ms=4, color=f"C{i}")
        axes[0, col].set_yscale("log")
        axes[0, col].set_ylabel(f"{bkg}-jet rejection")
        axes[0, col].set_title(f"b-tagging, fixed {working_point:.0%} inclusive WP, f_c = {f_c:g}", fontsize=9)
        axes[0, col].legend(fontsize=8)
        axes[0, col].grid(alpha=0.3)
        _ratio_axis(axes[1, col], bkg, taggers[ref][0])
        axes[1, col].set_xlabel("jet pT [GeV]")
    fig.tight_layout()
    return _save(fig, out)


def plot_fc_scan(taggers: list[Tagger], out: Path, working_point: float = 0.7, f_c: float = F_C) -> Path:
    """c vs light rejection of D_b at one working point as f_c runs over [0, 1]; the star marks `f_c`."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (name, probs, labels, *_) in enumerate(taggers):
        scan = fc_scan(probs, labels, working_point=working_point)
        light, c = ([r[bkg]["rejection"] for r in scan] for bkg in BACKGROUNDS)
        ax.plot(light, c, "-o", ms=3, color=f"C{i}", label=name)
        (mark,) = fc_scan(probs, labels, (f_c,), working_point)
        ax.plot(mark["light"]["rejection"], mark["c"]["rejection"], "*", ms=14, color=f"C{i}", mec="k")
        for r in (scan[0], scan[-1]):
            xy = (r["light"]["rejection"], r["c"]["rejection"])
            if np.all(np.isfinite(xy)):
                ax.annotate(f"f_c={r['f_c']:g}", xy, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("light-jet rejection")
    ax.set_ylabel("c-jet rejection")
    ax.set_title(f"f_c scan at {working_point:.0%} b-jet efficiency (star: f_c = {f_c:g})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def plot_discriminant(name: str, probs: np.ndarray, labels: np.ndarray, out: Path, f_c: float = F_C) -> Path:
    """Normalised D_b per flavour, with the cuts of the standard working points; over/underflow fill the edge bins."""
    disc, labels = discriminant_b(probs, f_c), np.asarray(labels)
    lo, hi = np.quantile(disc, [0.001, 0.999])
    bins = np.linspace(lo, hi, 61)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, flavour in enumerate(FLAVOURS):
        d = disc[labels == k]
        if len(d):
            ax.hist(np.clip(d, lo, hi), bins=bins, density=True, histtype="step", lw=1.5, label=f"{flavour} jets")
    for row in rejection_table(disc, labels, B, WORKING_POINTS):
        if np.isfinite(row["cut"]):
            ax.axvline(row["cut"], color="grey", ls=":", lw=1)
            ax.text(
                row["cut"],
                0.98,
                f"{row['working_point']:.0%}",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
            )
    ax.set_yscale("log")
    ax.set_xlabel(f"D_b (f_c = {f_c:g})")
    ax.set_ylabel("normalised number of jets")
    ax.set_title(name)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)
