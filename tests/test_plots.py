"""The plots' content, not only their files: the drawn lines and bands against rejections and binomial errors
computed here independently, the axis scales, the legends, and that no module switches the backend or rcParams."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from ai4hep.metrics.binary import rejection_at
from ai4hep.metrics.flavour import discriminant_b, rejection_vs_pt
from ai4hep.plots import flavour, roc

from .test_flavour_metrics import synthetic_tagger

PNG = b"\x89PNG\r\n\x1a\n"


# --- helpers ---------------------------------------------------------------------------------------------------------


def artist(fig: Figure, gid: str):
    """The one line or band of `fig` with this gid, and its axes."""
    found = [(a, ax) for ax in fig.axes for a in [*ax.get_lines(), *ax.collections] if a.get_gid() == gid]
    assert len(found) == 1, f"{len(found)} artists with gid {gid!r}"
    return found[0]


def ydata(fig: Figure, gid: str) -> np.ndarray:
    line, _ = artist(fig, gid)
    return np.asarray(line.get_ydata(), float)


def band_edges(band: PolyCollection, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of a fill_between band at each x (NaN where the band has no vertex there)."""
    verts = np.concatenate([p.vertices for p in band.get_paths()])
    lower, upper = np.full(len(x), np.nan), np.full(len(x), np.nan)
    for i, xi in enumerate(x):
        ys = verts[np.isclose(verts[:, 0], xi, rtol=0, atol=1e-12), 1]
        if len(ys):
            lower[i], upper[i] = ys.min(), ys.max()
    return lower, upper


def binomial_rejection_error(eff_b: np.ndarray, n_b: int) -> np.ndarray:
    """sigma(1/eps_B) = sqrt(eps_B (1 - eps_B) / N_B) / eps_B^2, written out again here."""
    out = np.full(len(eff_b), np.nan)
    for i, e in enumerate(eff_b):
        if e > 0:
            out[i] = math.sqrt(e * (1 - e) / n_b) / e**2
    return out


def legend_texts(ax) -> list[str]:
    texts = []
    for child in ax.get_children():
        if isinstance(child, matplotlib.legend.Legend):
            texts += [t.get_text() for t in child.get_texts()]
    return texts


def binary_pred(name: str, signal: np.ndarray, background: np.ndarray) -> SimpleNamespace:
    """A two-class prediction whose score (p_1) is `signal` for the signal jets and `background` for the others."""
    score = np.r_[signal, background].astype(float)
    labels = np.r_[np.ones(len(signal), int), np.zeros(len(background), int)]
    return SimpleNamespace(probs=np.c_[1 - score / 100, score / 100], labels=labels, classes=["QCD", "Top"], name=name)


@pytest.fixture(scope="module")
def taggers() -> list[tuple]:
    """Two taggers scored on the same jets (same labels and pT), the second weaker."""
    probs, labels, pt = synthetic_tagger(4000, seed=3, separation=2.2)
    weak, _, _ = synthetic_tagger(4000, seed=3, separation=1.2)
    return [("strong", probs, labels, pt), ("weak", weak, labels, pt)]


# --- ROC (binary / multi-class) -------------------------------------------------------------------------------------

# Ten signal jets with scores 20..11 and eight background jets, one tied with a signal jet (15: a jet passes a cut
# score >= cut, as in metrics.binary.rejection_at); rejections are known by hand.
SIGNAL = np.arange(20, 10, -1)
BACKGROUND = np.array([19.5, 15, 12.5, 5, 4, 3, 2, 1])


def by_hand(grid: np.ndarray, signal: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eps_B, keep) at each grid point: the tightest cut keeping eps_S of the signal is the k-th highest signal
    score, k = ceil(eps_S n_S); points on a boundary k = eps_S n_S are left out (keep False)."""
    s = np.sort(signal)[::-1]
    eff_b, keep = np.full(len(grid), np.nan), np.ones(len(grid), bool)
    for i, e in enumerate(grid):
        k = e * len(s)
        if abs(k - round(k)) < 1e-6:
            keep[i] = False
            continue
        cut = s[math.ceil(k) - 1]
        eff_b[i] = np.mean(background >= cut)
    return eff_b, keep


def test_roc_line_is_inverse_background_efficiency_with_binomial_band() -> None:
    fig = roc.draw_roc(binary_pred("tagger", SIGNAL, BACKGROUND))
    line, ax = artist(fig, "roc:tagger:Top")
    x = np.asarray(line.get_xdata(), float)
    np.testing.assert_allclose(x, np.linspace(0.05, 1.0, 96))
    eff_b, keep = by_hand(x, SIGNAL, BACKGROUND)
    # by hand: no background at 20 (eps_S <= 0.1), 19.5 passes from the 2nd signal jet, 15 from the 6th, 12.5 the 9th
    assert np.isnan(ydata(fig, "roc:tagger:Top")[x < 0.1]).all()
    with np.errstate(divide="ignore"):
        expect = np.where(eff_b > 0, 1 / eff_b, np.nan)
    assert set(np.unique(expect[keep & (x > 0.1)])) == {8.0, 4.0, 8 / 3}
    assert expect[np.argmin(abs(x - 0.55))] == 4.0  # the 6th signal jet's cut, 15, keeps the tied background jet
    np.testing.assert_allclose(ydata(fig, "roc:tagger:Top")[keep], expect[keep])
    lower, upper = band_edges(artist(fig, "roc:tagger:Top:band")[0], x)
    sigma = binomial_rejection_error(eff_b, len(BACKGROUND))
    np.testing.assert_allclose(lower[keep], (expect - sigma)[keep])
    np.testing.assert_allclose(upper[keep], (expect + sigma)[keep])
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert legend_texts(ax) == ["tagger: Top"]
    assert len(fig.axes) == 1  # no reference, no ratio panel


def test_roc_matches_rejection_at_on_a_larger_sample() -> None:
    rng = np.random.default_rng(1)
    pred = binary_pred("t", rng.normal(60, 10, 700), rng.normal(40, 10, 900))
    fig = roc.draw_roc(pred)
    line, _ = artist(fig, "roc:t:Top")
    score, y = pred.probs[:, 1], pred.labels == 1
    for e, r in zip(line.get_xdata(), line.get_ydata(), strict=True):
        want = rejection_at(score, y, float(e))["rejection"]
        assert (np.isnan(r) and not np.isfinite(want)) or r == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("ratio_band", ["tagger", "combined"])
def test_roc_ratio_panel_is_quotient_with_propagated_band(ratio_band: str) -> None:
    rng = np.random.default_rng(2)
    sig, bkg = rng.normal(0, 1, 600), rng.normal(0, 1, 800)
    pred = binary_pred("new", 50 + 12 * sig, 38 + 10 * bkg)
    ref = binary_pred("old", 50 + 10 * sig + 3 * rng.normal(0, 1, 600), 42 + 10 * bkg)
    fig = roc.draw_roc(pred, ref, ratio_band=ratio_band)
    line, ax = artist(fig, "roc:new:Top")
    x = np.asarray(line.get_xdata(), float)
    r_new, r_old = ydata(fig, "roc:new:Top"), ydata(fig, "roc:old:Top")
    quotient = r_new / r_old
    ratio_line, rax = artist(fig, "ratio:new:Top")
    assert rax is not ax and rax.get_yscale() == "linear" and ax.get_yscale() == "log"
    ok = np.isfinite(quotient)
    assert ok.sum() > 60
    np.testing.assert_allclose(np.asarray(ratio_line.get_ydata(), float)[ok], quotient[ok])
    # relative binomial errors, from the background efficiencies 1/r and N_B = 800 background jets
    rel_new = binomial_rejection_error(1 / r_new, 800) * (1 / r_new)
    rel_old = binomial_rejection_error(1 / r_old, 800) * (1 / r_old)
    rel = rel_new if ratio_band == "tagger" else np.hypot(rel_new, rel_old)
    lower, upper = band_edges(artist(fig, "ratio:new:Top:band")[0], x)
    np.testing.assert_allclose(lower[ok], (quotient * (1 - rel))[ok])
    np.testing.assert_allclose(upper[ok], (quotient * (1 + rel))[ok])
    # the reference's own ratio: 1, with its relative error around it (in both conventions)
    fine = np.isfinite(r_old)
    np.testing.assert_allclose(ydata(fig, "ratio:old:Top")[fine], 1.0)
    lower, upper = band_edges(artist(fig, "ratio:old:Top:band")[0], x)
    np.testing.assert_allclose(lower[fine & (r_old > 1)], (1 - rel_old)[fine & (r_old > 1)])
    np.testing.assert_allclose(upper[fine & (r_old > 1)], (1 + rel_old)[fine & (r_old > 1)])
    assert legend_texts(ax) == ["new: Top", "old: Top (reference)"]
    assert "old" in rax.get_ylabel()


def test_roc_rejects_unknown_ratio_band() -> None:
    pred = binary_pred("t", SIGNAL, BACKGROUND)
    with pytest.raises(ValueError, match="ratio_band"):
        roc.draw_roc(pred, pred, ratio_band="quadrature")


def test_rejection_vs_pt_and_confusion_show_the_metrics(tmp_path: Path) -> None:
    rows = [
        {"pt_low": 500.0, "pt_high": 600.0, "rejection": 30.0, "error": 3.0},
        {"pt_low": 600.0, "pt_high": 800.0, "rejection": 40.0, "error": 5.0},
        {"pt_low": 800.0, "pt_high": 1000.0, "rejection": None, "error": None},  # no background passed
    ]
    metrics = {
        "model": "ParT",
        "classes": ["QCD", "Top", "W"],
        "vs_background": {"Top": {"rejection_vs_pt_at_0.5": rows}, "W": {"rejection_vs_pt_at_0.5": rows[:1]}},
        "confusion_matrix": [[50, 3, 2], [4, 40, 6], [1, 2, 60]],
    }
    fig = roc.draw_rejection_vs_pt(metrics)
    line, ax = artist(fig, "rejection_vs_pt:Top")
    np.testing.assert_array_equal(line.get_xdata(), [500, 600, np.nan, 600, 800, np.nan, 800, 1000, np.nan])
    np.testing.assert_array_equal(line.get_ydata(), [30, 30, np.nan, 40, 40, np.nan, np.nan, np.nan, np.nan])
    paths = artist(fig, "rejection_vs_pt:Top:band")[0].get_paths()
    assert len(paths) == 2  # one box per bin with a rejection
    for path, (lo, hi, r, e) in zip(paths, [(500, 600, 30, 3), (600, 800, 40, 5)], strict=True):
        v = path.vertices
        assert set(v[:, 0]) == {lo, hi} and (v[:, 1].min(), v[:, 1].max()) == (r - e, r + e)
    assert legend_texts(ax) == ["Top ($\\varepsilon_S$ = 0.5 per bin)", "W ($\\varepsilon_S$ = 0.5 per bin)"]
    image = roc.draw_confusion(metrics).axes[0].images[0].get_array()
    conf = np.array(metrics["confusion_matrix"], float)
    np.testing.assert_allclose(image, conf / conf.sum(axis=1, keepdims=True))
    for name, plot in (("pt", roc.plot_rejection_vs_pt), ("conf", roc.plot_confusion)):
        out = tmp_path / f"{name}.png"
        assert plot(metrics, out) == out and out.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.png", "pt.png"]  # no temporary file left


# --- flavour plots ---------------------------------------------------------------------------------------------------


def test_flavour_roc_lines_ratios_and_bands(taggers: list[tuple]) -> None:
    fig = flavour.draw_flavour_roc(taggers, reference="weak")
    main = artist(fig, "roc:strong:light")[1]
    grid = np.linspace(0.5, 1.0, 101)
    for bkg, k in (("light", 0), ("c", 1)):
        curves = {}
        for name, probs, labels, _ in taggers:
            line, ax = artist(fig, f"roc:{name}:{bkg}")
            assert ax is main
            np.testing.assert_allclose(line.get_xdata(), grid)
            sel = (labels == 2) | (labels == k)
            disc, y = discriminant_b(probs)[sel], labels[sel] == 2
            want = [rejection_at(disc, y, float(e)) for e in grid]
            r = np.array([w["rejection"] if np.isfinite(w["rejection"]) else np.nan for w in want])
            np.testing.assert_allclose(ydata(fig, f"roc:{name}:{bkg}"), r)
            lower, upper = band_edges(artist(fig, f"roc:{name}:{bkg}:band")[0], grid)
            err = np.array([w["error"] for w in want])
            np.testing.assert_allclose(lower, r - err)
            np.testing.assert_allclose(upper, r + err)
            curves[name] = (r, err / r)
        (r_s, rel_s), (r_w, rel_w) = curves["strong"], curves["weak"]
        ratio_line, rax = artist(fig, f"ratio:strong:{bkg}")
        assert rax is not main and rax.get_yscale() == "linear"
        np.testing.assert_allclose(ratio_line.get_ydata(), r_s / r_w)
        lower, upper = band_edges(artist(fig, f"ratio:strong:{bkg}:band")[0], grid)
        np.testing.assert_allclose(lower, r_s / r_w * (1 - rel_s))
        np.testing.assert_allclose(upper, r_s / r_w * (1 + rel_s))
        np.testing.assert_allclose(ydata(fig, f"ratio:weak:{bkg}"), 1.0)
        lower, upper = band_edges(artist(fig, f"ratio:weak:{bkg}:band")[0], grid)
        np.testing.assert_allclose(lower, 1 - rel_w)
        np.testing.assert_allclose(upper, 1 + rel_w)
        assert bkg in rax.get_ylabel() and "weak" in rax.get_ylabel()
    assert main.get_yscale() == "log"
    assert sorted(legend_texts(main)) == sorted(
        ["strong", "weak (reference)", "light-jet rejection", "c-jet rejection"]
    )
    assert fig.axes[-1].get_xlim() == (0.5, 1.0)


def test_flavour_roc_combined_band_adds_the_reference_error(taggers: list[tuple]) -> None:
    tagger_fig = flavour.draw_flavour_roc(taggers, reference="weak")
    combined = flavour.draw_flavour_roc(taggers, reference="weak", ratio_band="combined")
    grid = np.linspace(0.5, 1.0, 101)
    lo_t, _ = band_edges(artist(tagger_fig, "ratio:strong:light:band")[0], grid)
    lo_c, _ = band_edges(artist(combined, "ratio:strong:light:band")[0], grid)
    ratio = ydata(combined, "ratio:strong:light")
    rel_s = (ratio - lo_t) / ratio
    r_w = ydata(combined, "roc:weak:light")
    rel_w = binomial_rejection_error(1 / r_w, int(np.sum(taggers[1][2] == 0))) / r_w
    np.testing.assert_allclose((ratio - lo_c) / ratio, np.hypot(rel_s, rel_w))
    # the reference's own band does not change
    np.testing.assert_allclose(
        band_edges(artist(combined, "ratio:weak:light:band")[0], grid)[0],
        band_edges(artist(tagger_fig, "ratio:weak:light:band")[0], grid)[0],
    )


def test_flavour_rejection_vs_pt_boxes_and_ratio(taggers: list[tuple]) -> None:
    fig = flavour.draw_rejection_vs_pt(taggers, reference="weak")
    rows = {name: rejection_vs_pt(discriminant_b(p), lab, pt)["bins"] for name, p, lab, pt in taggers}
    n_inf = 0
    for bkg in ("light", "c"):
        top = artist(fig, f"rejection_vs_pt:strong:{bkg}")[1]
        assert top.get_yscale() == "log"
        assert legend_texts(top) == ["strong", "weak (reference)"]
        values = {}
        for name in ("strong", "weak"):
            rej = np.array([r[bkg]["rejection"] for r in rows[name]])
            err = np.array([r[bkg]["error"] for r in rows[name]])
            n_inf += int(np.isinf(rej).sum())
            rej[~np.isfinite(rej)] = np.nan  # no background jet passed: not drawn
            line = artist(fig, f"rejection_vs_pt:{name}:{bkg}")[0]
            np.testing.assert_allclose(np.asarray(line.get_ydata())[0::3], rej)
            np.testing.assert_allclose(np.asarray(line.get_ydata())[1::3], rej)
            low = np.asarray(line.get_xdata())[0::3]
            np.testing.assert_array_equal(low, [r["pt_low"] for r in rows[name]])
            last = rows[name][-1]  # the open bin [250, inf) ends as far above its mean pT as it starts below
            assert np.asarray(line.get_xdata())[-2] == pytest.approx(2 * last["pt_mean"] - last["pt_low"])
            values[name] = (rej, err)
        (r, e), (d, _) = values["strong"], values["weak"]
        ratio_line, rax = artist(fig, f"ratio:strong:{bkg}")
        assert rax.get_yscale() == "linear" and rax is not top
        np.testing.assert_allclose(np.asarray(ratio_line.get_ydata())[0::3], r / d)
        drawn = np.isfinite(r / d)
        paths = artist(fig, f"ratio:strong:{bkg}:band")[0].get_paths()
        assert len(paths) == drawn.sum() > 2
        for path, lo, q, rel in zip(paths, low[drawn], (r / d)[drawn], (e / r)[drawn], strict=True):
            v = path.vertices
            assert v[:, 0].min() == lo
            np.testing.assert_allclose([v[:, 1].min(), v[:, 1].max()], [q * (1 - rel), q * (1 + rel)])
        reference_ratio = ydata(fig, f"ratio:weak:{bkg}")[0::3]
        np.testing.assert_allclose(reference_ratio[np.isfinite(d)], 1.0)
    assert n_inf > 0  # the sample has bins where no background passes: they must stay out of the lines


def test_flavour_pngs_and_errors(taggers: list[tuple], tmp_path: Path) -> None:
    name, probs, labels, _ = taggers[0]
    outs = [
        flavour.plot_flavour_roc(taggers, tmp_path / "roc.png", reference="weak"),
        flavour.plot_rejection_vs_pt(taggers, tmp_path / "pt.png"),
        flavour.plot_fc_scan(taggers, tmp_path / "fc.png"),
        flavour.plot_discriminant(name, probs, labels, tmp_path / "disc.png"),
    ]
    for out in outs:
        assert out.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disc.png", "fc.png", "pt.png", "roc.png"]
    with pytest.raises(ValueError, match="ratio_band"):
        flavour.draw_flavour_roc(taggers, ratio_band="nope")
    assert flavour.draw_fc_scan(taggers).axes[0].get_xscale() == "log"
    assert flavour.draw_discriminant(name, probs, labels).axes[0].get_yscale() == "log"


# --- no global state -------------------------------------------------------------------------------------------------


def test_drawing_and_saving_leave_rcparams_alone(taggers: list[tuple], tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    fig = flavour.draw_flavour_roc(taggers)
    assert fig.axes[0].xaxis.get_label().get_fontsize() > 0
    flavour.plot_rejection_vs_pt(taggers, tmp_path / "pt.png")
    roc.plot_roc(binary_pred("t", SIGNAL, BACKGROUND), path=tmp_path / "roc.png")
    assert dict(matplotlib.rcParams) == before


SCRIPT = """
import matplotlib
before = dict(matplotlib.rcParams)
import ai4hep.bench.report, ai4hep.plots.flavour, ai4hep.plots.roc, ai4hep.plots.style
import numpy as np
from types import SimpleNamespace
after_import = dict(matplotlib.rcParams)
pred = SimpleNamespace(probs=np.c_[np.linspace(1, 0, 40), np.linspace(0, 1, 40)], labels=np.arange(40) % 2,
                       classes=["QCD", "Top"], name="t")
ai4hep.plots.roc.plot_roc(pred, pred, __import__("pathlib").Path(r"{out}"))
print(matplotlib.get_backend())
print(after_import == before, dict(matplotlib.rcParams) == before)
"""


def test_importing_and_plotting_keep_the_users_backend(tmp_path: Path) -> None:
    out = tmp_path / "roc.png"
    env = {**os.environ, "MPLBACKEND": "svg"}
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(out=out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["svg", "True", "True"]
    assert out.read_bytes()[:8] == PNG


def test_a_plot_without_any_finite_rejection_still_draws(tmp_path: Path) -> None:
    """Tiny test samples where no background jet passes: the rejections are all infinite; the plot is empty, not an
    error (matplotlib refuses a log axis with no positive data)."""
    rng = np.random.default_rng(1)
    labels = np.r_[np.full(30, 2), np.zeros(5, int), np.ones(5, int)]
    probs = np.zeros((40, 3))
    probs[np.arange(40), labels] = 1.0  # a perfect tagger: nothing but b passes any working point
    pt = rng.uniform(25, 200, 40)
    out = flavour.plot_rejection_vs_pt([("perfect", probs, labels, pt)], tmp_path / "r.png")
    assert out.stat().st_size > 0
    fig = flavour.draw_rejection_vs_pt([("perfect", probs, labels, pt)])
    top = fig.axes[0]
    assert top.get_yscale() == "log" and top.get_ylim() == (1.0, 10.0)
