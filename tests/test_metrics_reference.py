"""ai4hep's metrics against reference implementations, weighted and unweighted: scikit-learn (ROC, AUC, accuracy),
atlas-ftag-tools 0.3.6 (efficiency and rejection at a cut, their binomial errors, D_b and D_c), numpy's weighted
inverted-CDF quantile, and brute force (pairwise Mann-Whitney, jets replicated instead of weighted). The deliberate
differences from the references are listed in docs/metrics.md, each with the test here that pins it down."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ftag import Flavours, LabelContainer
from ftag.utils.metrics import (
    calculate_efficiency,
    calculate_efficiency_error,
    calculate_rejection,
    calculate_rejection_error,
    get_discriminant,
)
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from ai4hep.metrics.binary import accuracy, against_background, auc, auc_error, n_effective, rejection_at, roc_curve
from ai4hep.metrics.flavour import (
    discriminant_b,
    discriminant_c,
    fc_scan,
    flavour_metrics,
    origin_metrics,
    rejection_ratio,
    rejection_table,
    rejection_vs_pt,
    vertex_metrics,
    working_point_cut,
)

N_JETS = 5000
FTAG_FLAVOURS = LabelContainer.from_list([Flavours.bjets, Flavours.cjets, Flavours.ujets])


def tagger(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs (n, 3) as (p_u, p_c, p_b), labels 0/1/2, pt): softmax of Gaussian logits shifted to the true class;
    with `ties` the logits are rounded, so that many jets share a discriminant value."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), labels] += 1.5
    if ties:
        logits = np.round(logits, 1)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, labels, 20 + rng.exponential(60, n)


def positive_weights(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 2.5, n)


def signed_weights(n: int, seed: int) -> np.ndarray:
    """Mostly positive, 10% negative (as NLO generators give)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 2.5, n)
    return np.where(rng.uniform(size=n) < 0.1, -0.5 * w, w)


def binary_sample(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=n) < 0.4
    score = rng.normal(y.astype(float), 1.0)
    return (np.round(score, 1) if ties else score), y


# --- scikit-learn ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_matches_sklearn(ties: bool, weighted: bool) -> None:
    score, y = binary_sample(N_JETS, seed=1, ties=ties)
    w = positive_weights(N_JETS, 2) if weighted else None
    ours = auc(score, y, weights=w)
    assert abs(ours - roc_auc_score(y, score, sample_weight=w)) < 1e-12
    assert 0.7 < ours < 0.8  # the sample is separated as intended: a wrong AUC cannot pass by being 0.5 or nan


def test_weighted_auc_with_negative_weights_is_the_pairwise_mann_whitney_sum() -> None:
    # scikit-learn's roc_auc_score refuses weights that make its ROC non-monotonic; the brute-force pair sum is the
    # reference: each (signal, background) pair counts w_s w_b, ties one half.
    score, y = binary_sample(500, seed=3, ties=True)
    w = signed_weights(500, 4)
    s_sig, s_bkg, w_sig, w_bkg = score[y], score[~y], w[y], w[~y]
    pair = (s_sig[:, None] > s_bkg[None, :]) + 0.5 * (s_sig[:, None] == s_bkg[None, :])
    expected = float(np.sum(w_sig[:, None] * w_bkg[None, :] * pair) / (w_sig.sum() * w_bkg.sum()))
    assert auc(score, y, weights=w) == pytest.approx(expected, rel=1e-12)
    assert auc(score, y, weights=np.ones(500)) == pytest.approx(auc(score, y), rel=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_curve_matches_sklearn(ties: bool, weighted: bool) -> None:
    score, y = binary_sample(N_JETS, seed=5, ties=ties)
    w = positive_weights(N_JETS, 6) if weighted else None
    eff_s, eff_b, thresholds = roc_curve(score, y, weights=w)
    # every distinct threshold: sklearn's (fpr, tpr) after its extra first point (threshold inf, (0, 0))
    fpr, tpr, thr = sk_roc_curve(y, score, sample_weight=w, drop_intermediate=False)
    assert (fpr[0], tpr[0], thr[0]) == (0.0, 0.0, np.inf)
    assert np.array_equal(thr[1:], thresholds)
    np.testing.assert_allclose(fpr[1:], eff_b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr[1:], eff_s, rtol=0, atol=1e-12)
    # sklearn's default drops collinear points: what it keeps is a subset of ours, with the same area
    fpr, tpr, thr = sk_roc_curve(y, score, sample_weight=w)
    assert len(thr) - 1 <= len(thresholds) and (weighted or ties or len(thr) < len(thresholds) / 2)
    index = {t: i for i, t in enumerate(thresholds)}
    kept = np.array([index[t] for t in thr[1:]])
    np.testing.assert_allclose(fpr[1:], eff_b[kept], rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr[1:], eff_s[kept], rtol=0, atol=1e-12)
    ours_area = np.trapezoid(np.r_[0, eff_s], np.r_[0, eff_b])
    assert ours_area == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)
    assert ours_area == pytest.approx(auc(score, y, weights=w), abs=1e-12)


def test_roc_curve_weight_and_weights_are_the_same_argument() -> None:
    score, y = binary_sample(1000, seed=7, ties=False)
    w = positive_weights(1000, 8)
    for a, b in zip(roc_curve(score, y, w), roc_curve(score, y, weights=w), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="not both"):
        roc_curve(score, y, w, weights=w)


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_matches_sklearn(weighted: bool) -> None:
    probs, labels, _ = tagger(N_JETS, seed=9)
    w = positive_weights(N_JETS, 10) if weighted else None
    expected = accuracy_score(labels, probs.argmax(axis=1), sample_weight=w)
    assert accuracy(probs, labels, weights=w) == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 0.9


# --- the working-point cut: numpy's weighted inverted-CDF quantile ----------------------------------------------------


def test_weighted_cut_is_numpys_weighted_inverted_cdf_quantile() -> None:
    rng = np.random.default_rng(11)
    for n in (1, 7, 10, 100, 999, 2000):
        for ties in (False, True):
            x = rng.normal(size=n)
            x = np.round(x, 1) if ties else x
            w = rng.uniform(0.0, 2.0, n)
            for eff in np.linspace(0.0, 1.0, 41):
                cut = working_point_cut(x, eff, weights=w)
                assert cut == np.quantile(x, 1.0 - eff, method="inverted_cdf", weights=w)
                assert working_point_cut(x, eff, weights=np.ones(n)) == working_point_cut(x, eff)  # bit for bit
                assert cut in x and w[x >= cut].sum() >= eff * w.sum() * (1 - 1e-12)


# --- atlas-ftag-tools ------------------------------------------------------------------------------------------------


def structured(probs: np.ndarray) -> np.ndarray:
    jets = np.zeros(len(probs), dtype=[("GN2_pu", "f8"), ("GN2_pc", "f8"), ("GN2_pb", "f8")])
    jets["GN2_pu"], jets["GN2_pc"], jets["GN2_pb"] = probs.T
    return jets


def test_discriminants_match_ftag() -> None:
    probs, _, _ = tagger(N_JETS, seed=12)
    probs[:5] = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0, 0, 0]]  # zeros: both use epsilon = 1e-10
    jets = structured(probs)
    for f_c in (0.0, 0.05, 0.2, 0.5, 1.0):
        ref = get_discriminant(jets, "GN2", Flavours.bjets, FTAG_FLAVOURS, {"fc": f_c, "fu": 1 - f_c})
        np.testing.assert_allclose(discriminant_b(probs, f_c), ref, rtol=1e-14, atol=0)
    ref = get_discriminant(jets, "GN2", Flavours.cjets, FTAG_FLAVOURS, {"fb": 0.3, "fu": 0.7})
    np.testing.assert_allclose(discriminant_c(probs, 0.3), ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weights", [None, "positive", "signed"])
def test_efficiency_rejection_and_errors_at_a_cut_match_ftag(ties: bool, weights: str | None) -> None:
    # the same cut in both: ai4hep's working-point cut, given to ftag as cut_value. Jets exactly at the cut pass in
    # both (ftag's last histogram bin is closed), which the tied sample checks.
    probs, labels, _ = tagger(N_JETS, seed=13, ties=ties)
    w = {None: None, "positive": positive_weights(N_JETS, 14), "signed": signed_weights(N_JETS, 14)}[weights]
    disc = discriminant_b(probs)
    sig, w_sig = disc[labels == 2], None if w is None else w[labels == 2]
    for row in rejection_table(disc, labels, weights=w):
        cut = row["cut"]
        assert calculate_efficiency(sig, sig, cut_value=cut, bkg_weights=w_sig)[0] == pytest.approx(
            row["signal_eff"], rel=1e-12
        )
        for k, name in ((0, "light"), (1, "c")):
            bkg, w_bkg, r = disc[labels == k], None if w is None else w[labels == k], row[name]
            n = len(bkg) if w is None else (w_bkg.sum() ** 2 / np.sum(w_bkg**2))  # N_eff, written out
            assert r["n"] == len(bkg) and (w is None or r["n_eff"] == pytest.approx(n, rel=1e-12))
            eff = calculate_efficiency(sig, bkg, cut_value=cut, sig_weights=w_sig, bkg_weights=w_bkg)[0]
            rej = calculate_rejection(sig, bkg, cut_value=cut, sig_weights=w_sig, bkg_weights=w_bkg)[0]
            assert r["eff"] == pytest.approx(eff, rel=1e-12)
            assert r["rejection"] == pytest.approx(rej, rel=1e-12)
            assert r["error"] == pytest.approx(calculate_rejection_error(rej, n), rel=1e-12)
            assert r["error"] == pytest.approx(calculate_efficiency_error(eff, n) / eff**2, rel=1e-12)
            assert 1 < r["rejection"] < 1000 and 0 < r["error"] < r["rejection"]
        # the binary interface gives the same numbers for light jets (cut included)
        sel = labels != 1
        ref = rejection_at(disc[sel], labels[sel] == 2, row["working_point"], weights=None if w is None else w[sel])
        assert ref["cut"] == cut
        assert ref["rejection"] == pytest.approx(row["light"]["rejection"], rel=1e-12)
        assert ref["error"] == pytest.approx(row["light"]["error"], rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_working_point_cut_agrees_with_ftags_percentile_to_one_jet(weighted: bool) -> None:
    # ftag interpolates the (weighted midpoint) percentile linearly; ai4hep takes the inverted-CDF quantile. Unweighted,
    # ftag's cut sits at order statistic (n - 1) q + 1 and ai4hep's at ceil(n q) (q = 1 - eff), so ftag's lies between
    # the scores either side of ai4hep's. Weighted, each keeps the working point to within the largest weight:
    # ai4hep's signal efficiency lies in [eff, eff + w_max / W], ftag's in [eff - w_max / W, eff + w_max / W].
    probs, labels, _ = tagger(N_JETS, seed=15)
    sig = discriminant_b(probs)[labels == 2]
    w = positive_weights(len(sig), 16) if weighted else np.ones(len(sig))
    order = np.sort(sig)
    step = w.max() / w.sum()
    below_eff = 0
    for eff in (0.5, 0.6, 0.7, 0.77, 0.85):
        ws = w if weighted else None
        ours = working_point_cut(sig, eff, weights=ws)
        ftag_eff, ftag_cut = calculate_efficiency(sig, sig, eff, return_cuts=True, sig_weights=ws, bkg_weights=ws)
        ours_eff = w[sig >= ours].sum() / w.sum()
        assert ours in sig and eff <= ours_eff <= eff + step
        assert eff - step <= ftag_eff <= eff + step
        assert ftag_eff == pytest.approx(w[sig >= ftag_cut].sum() / w.sum(), rel=1e-12)
        if not weighted:
            k = np.searchsorted(order, ours)
            assert order[k - 1] <= ftag_cut <= order[k + 1]
        below_eff += ftag_eff < eff
    assert below_eff >= 1  # ftag's interpolated cut keeps less than the working point somewhere; ai4hep's never


def test_ftag_interpolates_between_scores_where_ai4hep_keeps_a_real_score() -> None:
    # ten jets scored 1..10, working point 75%: ai4hep cuts at 3 (a real score; 8 of 10 jets pass, >= 75%), ftag at
    # 3.25 (order statistic 9 * 0.25 + 1), where 7 of 10 pass.
    sig = np.arange(1.0, 11.0)
    assert working_point_cut(sig, 0.75) == 3.0
    assert working_point_cut(sig, 0.75, weights=np.full(10, 0.3)) == 3.0
    ftag_eff, ftag_cut = calculate_efficiency(sig, sig, 0.75, return_cuts=True)
    assert ftag_cut == pytest.approx(3.25, abs=1e-6) and ftag_eff == pytest.approx(0.7)
    (row,) = rejection_table(np.r_[sig, sig], np.repeat([2, 0], 10), working_points=(0.75,))
    assert row["signal_eff"] == 0.8 and row["light"]["eff"] == 0.8


# --- weights: consistency checks against replicated jets and unit weights -------------------------------------------


def test_integer_weights_equal_replicated_jets() -> None:
    # a jet of weight k counts as k copies: every central value must agree; the errors use N_eff, not the copies
    probs, labels, pt = tagger(3000, seed=17)
    w = np.random.default_rng(18).integers(1, 4, 3000).astype(float)
    rep = np.repeat(np.arange(3000), w.astype(int))
    disc = discriminant_b(probs)
    weighted, copies = rejection_table(disc, labels, weights=w), rejection_table(disc[rep], labels[rep])
    for a, b in zip(weighted, copies, strict=True):
        assert a["cut"] == b["cut"] and a["signal_eff"] == pytest.approx(b["signal_eff"], rel=1e-12)
        for name in ("light", "c"):
            assert a[name]["eff"] == pytest.approx(b[name]["eff"], rel=1e-12)
            assert a[name]["rejection"] == pytest.approx(b[name]["rejection"], rel=1e-12)
            eff, n_eff = a[name]["eff"], n_effective(w[labels == (0 if name == "light" else 1)])
            assert a[name]["error"] == pytest.approx(math.sqrt(eff * (1 - eff) / n_eff) / eff**2, rel=1e-12)
            assert a[name]["error"] > 1.1 * b[name]["error"]  # N_eff < number of copies
    vs_w, vs_rep = rejection_vs_pt(disc, labels, pt, weights=w), rejection_vs_pt(disc[rep], labels[rep], pt[rep])
    assert vs_w["cut"] == vs_rep["cut"] and len(vs_w["bins"]) == len(vs_rep["bins"]) > 3
    for a, b in zip(vs_w["bins"], vs_rep["bins"], strict=True):
        assert a["pt_mean"] == pytest.approx(b["pt_mean"], rel=1e-12)
        assert a["signal"]["eff"] == pytest.approx(b["signal"]["eff"], rel=1e-12)
        assert a["light"]["rejection"] == pytest.approx(b["light"]["rejection"], rel=1e-12)
        in_bin = (pt >= a["pt_low"]) & (pt < a["pt_high"]) & (labels == 2)
        eff, n_eff = a["signal"]["eff"], n_effective(w[in_bin])
        assert a["signal"]["n"] == in_bin.sum() and a["signal"]["n_eff"] == pytest.approx(n_eff, rel=1e-12)
        assert a["signal"]["error"] == pytest.approx(math.sqrt(eff * (1 - eff) / n_eff), rel=1e-12)
    y = labels == 2
    assert auc(disc, y, weights=w) == pytest.approx(auc(disc[rep], y[rep]), rel=1e-12)
    assert accuracy(probs, labels, weights=w) == pytest.approx(accuracy(probs[rep], labels[rep]), rel=1e-12)
    a, b = rejection_at(disc, y, 0.7, weights=w), rejection_at(disc[rep], y[rep], 0.7)
    assert a["cut"] == b["cut"] and a["rejection"] == pytest.approx(b["rejection"], rel=1e-12)
    a, b = fc_scan(probs, labels, (0.0, 0.5), weights=w), fc_scan(probs[rep], labels[rep], (0.0, 0.5))
    assert [r["c"]["rejection"] for r in a] == pytest.approx([r["c"]["rejection"] for r in b], rel=1e-12)
    other = disc + np.random.default_rng(29).normal(0, 0.5, len(disc))
    a, b = (
        rejection_ratio(other, disc, labels, n_boot=2, weights=w),
        rejection_ratio(other[rep], disc[rep], labels[rep], n_boot=2),
    )
    assert a["ratio"] == pytest.approx(b["ratio"], rel=1e-12) and a["ratio"] != 1.0


def test_track_and_vertex_metrics_weighted_like_replicated_jets() -> None:
    rng = np.random.default_rng(19)
    n, t = 300, 8
    true = rng.integers(0, 5, (n, t))
    pred = np.where(rng.uniform(size=(n, t)) < 0.7, true, rng.integers(0, 5, (n, t)))
    valid = np.arange(t)[None] < rng.integers(2, t + 1, n)[:, None]
    w = rng.integers(1, 4, n).astype(float)
    rep = np.repeat(np.arange(n), w.astype(int))
    per_jet = origin_metrics(pred, true, valid, weights=w)
    per_track = origin_metrics(pred, true, valid, weights=np.where(valid, w[:, None], np.nan))  # padding: NaN is fine
    copies = origin_metrics(pred[rep], true[rep], valid[rep])
    assert per_jet == per_track
    assert per_jet["accuracy"] == pytest.approx(copies["accuracy"], rel=1e-12)
    assert per_jet["n_tracks"] == int(valid.sum()) and per_jet["sum_weights"] == copies["n_tracks"]
    for name, c in copies["per_class"].items():
        assert per_jet["per_class"][name]["efficiency"] == pytest.approx(c["efficiency"], rel=1e-12)
        assert per_jet["per_class"][name]["purity"] == pytest.approx(c["purity"], rel=1e-12)
    assert np.array_equal(per_jet["confusion"], copies["confusion"])

    truth = rng.integers(-1, 3, (n, t))
    scores = np.clip(
        ((truth[:, :, None] == truth[:, None, :]) & (truth[:, :, None] >= 0)) + rng.normal(0, 0.4, (n, t, t)), 0, 1
    )
    jet_labels = rng.integers(0, 3, n)
    vw = vertex_metrics(scores, truth, valid, jet_labels, weights=w)
    vr = vertex_metrics(scores[rep], truth[rep], valid[rep], jet_labels[rep])
    for key in ("efficiency", "purity", "pair_auc"):
        assert vw[key] == pytest.approx(vr[key], rel=1e-12)
    assert 0.6 < vw["pair_auc"] < 0.9999 and 0 < vw["efficiency"] < 1
    for name in ("light", "c", "b"):
        assert vw["per_flavour"][name]["efficiency"] == pytest.approx(vr["per_flavour"][name]["efficiency"], rel=1e-12)
    assert vw["n_jets"] == n and vw["sum_weights"] == vr["n_jets"]


def test_unit_and_scaled_weights_reproduce_the_unweighted_metrics() -> None:
    probs, labels, pt = tagger(N_JETS, seed=20, ties=True)
    plain = flavour_metrics(probs, labels, pt)
    for scale in (1.0, 3.7):
        m = flavour_metrics(probs, labels, pt, weights=np.full(N_JETS, scale))
        assert m["n_jets"] == plain["n_jets"]
        for table in ("b_tagging", "c_tagging", "fc_scan"):
            for a, b in zip(m[table], plain[table], strict=True):
                assert a["cut"] == b["cut"] and a["signal_eff"] == pytest.approx(b["signal_eff"], rel=1e-12)
                for name in {"light", "c", "b"} & set(b):
                    assert a[name]["n_eff"] == pytest.approx(b[name]["n"], rel=1e-12)
                    for key in ("eff", "rejection", "error"):
                        assert a[name][key] == pytest.approx(b[name][key], rel=1e-12)
        assert m["b_tagging_vs_pt"]["cut"] == plain["b_tagging_vs_pt"]["cut"]
        for a, b in zip(m["b_tagging_vs_pt"]["bins"], plain["b_tagging_vs_pt"]["bins"], strict=True):
            assert a["signal"]["error"] == pytest.approx(b["signal"]["error"], rel=1e-12)
            assert a["light"]["rejection"] == pytest.approx(b["light"]["rejection"], rel=1e-12)
    disc = discriminant_b(probs)
    for d2 in (disc, disc + np.random.default_rng(21).normal(0, 0.5, N_JETS)):
        r = rejection_ratio(d2, disc, labels, n_boot=30, weights=np.ones(N_JETS))
        assert r == rejection_ratio(d2, disc, labels, n_boot=30)  # same replicas, same cuts, same pass counts


def test_auc_error_uses_effective_counts() -> None:
    score, y = binary_sample(N_JETS, seed=22, ties=False)
    w = positive_weights(N_JETS, 23)
    a = auc(score, y, weights=w)
    n_s, n_b = int(y.sum()), int((~y).sum())
    eff_s, eff_b = w[y].sum() ** 2 / np.sum(w[y] ** 2), w[~y].sum() ** 2 / np.sum(w[~y] ** 2)
    err = auc_error(a, n_s, n_b, weights=w, is_signal=y)
    assert err == pytest.approx(auc_error(a, eff_s, eff_b), rel=1e-12)
    assert err > 1.05 * auc_error(a, n_s, n_b)  # N_eff < N for unequal weights
    assert auc_error(a, n_s, n_b, weights=np.ones(N_JETS), is_signal=y) == pytest.approx(auc_error(a, n_s, n_b))
    with pytest.raises(ValueError, match="is_signal"):
        auc_error(a, n_s, n_b, weights=w)
    with pytest.raises(ValueError, match="signal"):
        auc_error(a, n_s + 1, n_b - 1, weights=w, is_signal=y)


def test_negative_weights_enter_the_sums_and_errors_use_n_eff() -> None:
    score, y = binary_sample(N_JETS, seed=24, ties=False)
    w = signed_weights(N_JETS, 25)
    r = rejection_at(score, y, 0.7, weights=w)
    w_s, w_b, s_s, s_b = w[y], w[~y], score[y], score[~y]
    assert w_s[s_s >= r["cut"]].sum() >= 0.7 * w_s.sum()
    eff_b = w_b[s_b >= r["cut"]].sum() / w_b.sum()
    n_eff = w_b.sum() ** 2 / np.sum(w_b**2)
    assert r["eff_b"] == pytest.approx(eff_b, rel=1e-12) and r["n_eff"] == pytest.approx(n_eff, rel=1e-12)
    assert r["error"] == pytest.approx(math.sqrt(eff_b * (1 - eff_b) / n_eff) / eff_b**2, rel=1e-12)
    assert n_eff < 0.8 * len(w_b)


def test_zero_passing_background_weight_gives_the_n_eff_lower_limit() -> None:
    score = np.r_[np.full(100, 2.0), np.zeros(50)]
    w = np.r_[np.ones(100), np.full(25, 1.0), np.full(25, 3.0)]
    r = rejection_at(score, np.r_[np.ones(100, bool), np.zeros(50, bool)], 0.5, weights=w)
    assert r["rejection"] == math.inf and r["lower_limit"] == pytest.approx((100**2 / 250) / 1.14)


# --- bad weights -----------------------------------------------------------------------------------------------------


def _calls(n: int) -> dict:
    probs, labels, pt = tagger(n, seed=26)
    disc, y = discriminant_b(probs), labels == 2
    valid = np.ones((n, 4), bool)
    return {
        "roc_curve": lambda w: roc_curve(disc, y, weights=w),
        "auc": lambda w: auc(disc, y, weights=w),
        "auc_error": lambda w: auc_error(0.8, int(y.sum()), int((~y).sum()), weights=w, is_signal=y),
        "rejection_at": lambda w: rejection_at(disc, y, 0.7, weights=w),
        "against_background": lambda w: list(against_background(probs, labels, weights=w)),
        "accuracy": lambda w: accuracy(probs, labels, weights=w),
        "working_point_cut": lambda w: working_point_cut(disc, 0.7, weights=w),
        "rejection_table": lambda w: rejection_table(disc, labels, weights=w),
        "rejection_vs_pt": lambda w: rejection_vs_pt(disc, labels, pt, weights=w),
        "fc_scan": lambda w: fc_scan(probs, labels, weights=w),
        "flavour_metrics": lambda w: flavour_metrics(probs, labels, pt, weights=w),
        "rejection_ratio": lambda w: rejection_ratio(disc, disc, labels, n_boot=2, weights=w),
        "origin_metrics": lambda w: origin_metrics(np.zeros((n, 4)), np.zeros((n, 4)), valid, weights=w),
        "vertex_metrics": lambda w: vertex_metrics(np.zeros((n, 4, 4)), np.zeros((n, 4)), valid, weights=w),
    }


@pytest.mark.parametrize("name", list(_calls(10)))
def test_nan_and_misshaped_weights_are_refused(name: str) -> None:
    n = 200
    call = _calls(n)[name]
    call(np.ones(n))  # well-formed weights are accepted
    nan = np.ones(n)
    nan[7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        call(nan)
    with pytest.raises(ValueError, match="infinite"):
        call(np.r_[np.ones(n - 1), np.inf])
    with pytest.raises(ValueError, match=r"length 199|shape \(199,\)"):
        call(np.ones(n - 1))


def test_against_background_hands_back_the_selected_weights() -> None:
    probs, labels, _ = tagger(1000, seed=27)
    w = positive_weights(1000, 28)
    plain, weighted = list(against_background(probs, labels)), list(against_background(probs, labels, weights=w))
    assert [len(t) for t in plain] == [4, 4] and [len(t) for t in weighted] == [5, 5]
    for (k, score, y, sel), (k2, score2, y2, sel2, w_sel) in zip(plain, weighted, strict=True):
        assert k == k2 and np.array_equal(score, score2) and np.array_equal(y, y2) and np.array_equal(sel, sel2)
        assert np.array_equal(w_sel, w[sel])
