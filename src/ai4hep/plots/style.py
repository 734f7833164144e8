"""What every ai4hep plot shares: mplhep's ATLAS style, figures without pyplot, atomic saving, the binomial rejection
error and the puma-style bands.

No global state is touched. Figures are `matplotlib.figure.Figure` objects made directly (no pyplot, so no backend is
chosen or switched: savefig picks the PNG canvas itself), and the mplhep style is applied with `style()`, a context
manager that sets rcParams only while a figure is built or saved and restores them afterwards. A notebook user's
backend and rcParams stay as they were.

The label is mplhep's generic experiment label with a neutral name, "ai4hep Simulation": these are not ATLAS plots.

Uncertainties (puma's definitions, `puma.metrics.rej_err` and `puma.roc.Roc.divide`):

    rejection       r = 1/eps_B at each signal efficiency, eps_B the fraction of the N_B background jets passing the cut
    its error       sigma_r = sqrt(eps_B (1 - eps_B) / N_B) / eps_B^2  (eps_B's binomial error propagated to 1/eps_B)
    relative error  sigma_r / r = sqrt((1 - eps_B) / (eps_B N_B))
    ratio           r / r_ref, the reference's own ratio being 1
    ratio band      (r / r_ref) * sigma_r / r: the tagger's own relative error (the reference held fixed), so the
                    reference's band is 1 +- sigma_ref / r_ref. puma does this, and it is right for taggers scored on
                    the same jets, whose errors are strongly correlated (see metrics.flavour.rejection_ratio); with
                    ratio_band="combined" the reference's relative error is added in quadrature, the first-order error
                    of r / r_ref for statistically independent samples.

Where no background jet passes (eps_B = 0) the rejection is not drawn (NaN): it is only bounded from below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib.style
import mplhep
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ai4hep.atomic import atomic_path

STYLE = mplhep.style.ATLAS
# The ATLAS style is made for 8 x 6 inch figures; these keep its look at the smaller sizes used here.
OVERRIDES = {"font.size": 11, "ytick.major.size": 6, "ytick.minor.size": 3, "axes.labelpad": 4}
EXPERIMENT, STATUS = "ai4hep", "Simulation"
BAND_ALPHA = 0.3
RATIO_BANDS = ("tagger", "combined")
DPI = 110


@contextlib.contextmanager
def style() -> Iterator[None]:
    """mplhep's ATLAS style while the block runs; rcParams are restored afterwards."""
    with matplotlib.style.context([STYLE, OVERRIDES]):
        yield


def figure(figsize: tuple[float, float]) -> Figure:
    """A figure with no pyplot and no backend behind it, laid out by the constrained-layout engine."""
    fig = Figure(figsize=figsize, layout="constrained")
    fig.get_layout_engine().set(hspace=0.0, h_pad=0.02)
    return fig


def save(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    """Write `fig` as a PNG (or whatever the suffix says) that appears whole or not at all."""
    path = Path(path)
    with style(), atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return path


def label(ax: Axes, second_line: str | None = None) -> None:
    """The label "ai4hep Simulation" in the top-left corner, with an optional line below (selection, f_c, ...)."""
    mplhep.label.exp_text(exp=EXPERIMENT, text=STATUS, lumi=second_line, loc=4, ax=ax, fontsize=11)


def _line_values(ax: Axes) -> np.ndarray:
    """The finite y values of the lines drawn in data coordinates (not axhline / axvline)."""
    ys = [np.asarray(line.get_ydata(), float) for line in ax.get_lines() if line.get_transform() == ax.transData]
    ys = np.concatenate(ys) if ys else np.array([])
    return ys[np.isfinite(ys)]


def headroom(ax: Axes, fraction: float = 0.35, log: bool = True, values: np.ndarray | None = None) -> None:
    """Set the y range from the lines (not the bands, which may reach 0 where the statistics run out), or from
    `values`, and raise its top so that a `fraction` of the axis is left above them for the label and the legend."""
    ys = _line_values(ax) if values is None else np.asarray(values, float)
    ys = ys[np.isfinite(ys)]
    if log:
        ys = ys[ys > 0]
    if len(ys) == 0:  # nothing finite to show (e.g. no background jet passes anywhere): an empty but valid axis
        ax.set_ylim(*((1.0, 10.0) if log else (0.0, 1.0)))
        return
    lo, hi = float(ys.min()), float(ys.max())
    if log:
        lo, hi = lo / 1.5, max(hi, lo * 1.5 * 10) * 1.2
        ax.set_ylim(lo, hi * (hi / lo) ** (fraction / (1 - fraction)))
    else:
        lo, hi = min(lo, 0.0), hi * 1.05 if hi > 0 else 1.0
        ax.set_ylim(lo, hi + (hi - lo) * fraction / (1 - fraction))


def ratio_limits(ax: Axes) -> None:
    """A ratio panel's y range from its lines and 1, padded; wide bands are cut at the edges."""
    ys = np.r_[_line_values(ax), 1.0]
    ys = ys[np.isfinite(ys)]
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.15 * (hi - lo) or 0.05
    ax.set_ylim(lo - pad, hi + pad)


# --- rejections and their errors ------------------------------------------------------------------------------------


def rejection_error(eff_b: np.ndarray, n_b: float) -> np.ndarray:
    """Binomial error of r = 1/eps_B: sqrt(eps_B (1 - eps_B) / N_B) / eps_B^2 (NaN where eps_B = 0)."""
    eff_b = np.asarray(eff_b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.sqrt(eff_b * (1 - eff_b) / n_b) / eff_b**2
    return np.where(eff_b > 0, err, np.nan)


@dataclass(frozen=True)
class Rejection:
    """Background rejection on a signal-efficiency grid, with its binomial error."""

    eff_s: np.ndarray  # the grid
    eff_b: np.ndarray  # background efficiency at the cut keeping eff_s of the signal
    n_b: int  # background jets the efficiencies are fractions of

    @property
    def rejection(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.where(self.eff_b > 0, 1.0 / self.eff_b, np.nan)

    @property
    def error(self) -> np.ndarray:
        return rejection_error(self.eff_b, self.n_b)

    @property
    def relative_error(self) -> np.ndarray:
        return self.error / self.rejection


def rejection_curve(score: np.ndarray, is_signal: np.ndarray, grid: np.ndarray) -> Rejection:
    """1/eps_B at each signal efficiency of `grid`, with the cut of metrics.binary.rejection_at: the signal quantile
    (inverted CDF) at 1 - eps_S, background jets passing score >= cut."""
    score, y, grid = np.asarray(score, float), np.asarray(is_signal, bool), np.asarray(grid, float)
    sig, bkg = score[y], np.sort(score[~y])
    if len(sig) == 0 or len(bkg) == 0:
        return Rejection(grid, np.full(len(grid), np.nan), len(bkg))
    cuts = np.quantile(sig, 1.0 - grid, method="inverted_cdf")
    n_pass = len(bkg) - np.searchsorted(bkg, cuts, side="left")
    return Rejection(grid, n_pass / len(bkg), len(bkg))


def ratio_values(
    rej: np.ndarray,
    err: np.ndarray,
    ref_rej: np.ndarray,
    ref_err: np.ndarray,
    band: str = "tagger",
    is_reference: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(r / r_ref, its error) from rejections and their errors; see the module docstring for the two `band`
    conventions. The reference's own ratio always carries only its own relative error."""
    if band not in RATIO_BANDS:
        raise ValueError(f"ratio_band must be one of {RATIO_BANDS}, got {band!r}")
    rej, err, ref_rej, ref_err = (np.asarray(a, float) for a in (rej, err, ref_rej, ref_err))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = rej / ref_rej
        rel = err / rej
        if band == "combined" and not is_reference:
            rel = np.hypot(rel, ref_err / ref_rej)
    return value, value * rel


def ratio(curve: Rejection, reference: Rejection, band: str = "tagger") -> tuple[np.ndarray, np.ndarray]:
    """(r / r_ref, its error) of two curves on the same grid."""
    return ratio_values(
        curve.rejection, curve.error, reference.rejection, reference.error, band, is_reference=curve is reference
    )


# --- drawing ---------------------------------------------------------------------------------------------------------


def line_with_band(
    ax: Axes, x: np.ndarray, y: np.ndarray, err: np.ndarray, gid: str, **line_kw
) -> tuple[Line2D, PolyCollection]:
    """The line y(x) and a shaded band y +- err in its colour; gid names the line, gid + ":band" the band."""
    (line,) = ax.plot(x, y, zorder=3, gid=gid, **line_kw)
    band = ax.fill_between(x, y - err, y + err, color=line.get_color(), alpha=BAND_ALPHA, lw=0, zorder=2)
    band.set_gid(f"{gid}:band")
    return line, band


def steps(low: np.ndarray, high: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One flat segment per bin [low, high), NaN between bins: x = (lo0, hi0, nan, lo1, hi1, nan, ...)."""
    n = len(values)
    x = np.column_stack([low, high, np.full(n, np.nan)]).ravel()
    y = np.column_stack([values, values, np.full(n, np.nan)]).ravel()
    return x, y


def bin_edges(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the pT bins of rejection_vs_pt rows; an open last bin ends as far above its mean jet pT as it
    starts below it."""
    low = np.array([r["pt_low"] for r in rows], float)
    high = np.array([r["pt_high"] for r in rows], float)
    mean = np.array([r.get("pt_mean", np.nan) for r in rows], float)
    open_ = ~np.isfinite(high)
    high[open_] = np.where(np.isfinite(mean[open_]), 2 * mean[open_] - low[open_], 2 * low[open_])
    return low, high


def ratio_axis(ax: Axes, ylabel: str) -> None:
    """Finish a ratio panel: y range from its lines, a grey line at 1, the label centred."""
    ratio_limits(ax)
    ax.axhline(1.0, color="grey", lw=1, zorder=1)
    ax.set_ylabel(ylabel, loc="center", fontsize=9)
    ax.grid(alpha=0.3)
