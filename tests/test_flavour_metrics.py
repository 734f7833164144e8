"""Flavour-tagging metrics and plots against analytic values and hand-built jets (puma / atlas-ftag-tools rules)."""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from ai4hep.metrics.binary import rejection_at
from ai4hep.metrics.flavour import (
    FC_VALUES,
    discriminant_b,
    discriminant_c,
    fc_scan,
    find_vertices,
    flavour_metrics,
    origin_metrics,
    rejection_ratio,
    rejection_table,
    rejection_vs_pt,
    vertex_metrics,
)
from ai4hep.plots.flavour import plot_discriminant, plot_fc_scan, plot_flavour_roc, plot_rejection_vs_pt

PNG = b"\x89PNG\r\n\x1a\n"


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def phi_inverse(p: float) -> float:
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if phi(mid) < p else (lo, mid)
    return (lo + hi) / 2


def gaussian_discriminants(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """D for light ~ N(0, 1), c ~ N(1, 1), b ~ N(2, 1); n jets of each."""
    rng = np.random.default_rng(seed)
    disc = np.r_[rng.normal(0, 1, n), rng.normal(1, 1, n), rng.normal(2, 1, n)]
    return disc, np.repeat([0, 1, 2], n)


def synthetic_tagger(n: int, seed: int, separation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs, labels, pt): softmax of Gaussian logits shifted towards the true class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), labels] += separation
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, labels, 20 + rng.exponential(60, n)


# --- discriminants ---------------------------------------------------------------------------------------------------


def test_discriminants_match_formula_and_rise_with_pb() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert np.allclose(discriminant_b(probs), [math.log(0.2 / 0.46), math.log(0.8 / 0.1)], atol=1e-8)
    assert np.allclose(discriminant_c(probs), [math.log(0.3 / 0.41), math.log(0.1 / 0.31)], atol=1e-8)
    assert np.allclose(discriminant_b(probs, f_c=0.0), np.log(probs[:, 2] / probs[:, 0]), atol=1e-8)
    assert np.allclose(discriminant_b(probs, f_c=1.0), np.log(probs[:, 2] / probs[:, 1]), atol=1e-8)
    p_b = np.linspace(0, 1, 101)  # p_u : p_c fixed at 3 : 2, zero probabilities at both ends
    d = discriminant_b(np.c_[0.6 * (1 - p_b), 0.4 * (1 - p_b), p_b])
    assert np.all(np.isfinite(d)) and np.all(np.diff(d) > 0)
    assert np.all(np.isfinite(discriminant_c(np.zeros((1, 3)))))
    with pytest.raises(ValueError, match="N, 3"):
        discriminant_b(np.ones((4, 2)))


# --- rejection tables ------------------------------------------------------------------------------------------------


def test_gaussian_rejection_matches_analytic() -> None:
    n = 200_000
    disc, labels = gaussian_discriminants(n, seed=1)
    (row,) = rejection_table(disc, labels, signal=2, working_points=(0.7,))
    assert abs(row["cut"] - (2 + phi_inverse(0.3))) < 0.01
    for name, mean in (("light", 0.0), ("c", 1.0)):
        r = row[name]
        assert r["n"] == n
        assert abs(r["rejection"] - 1 / (1 - phi(row["cut"] - mean))) < 3 * r["error"]
    # the cut keeps 70% of b jets
    eff_b = np.mean(disc[labels == 2] >= row["cut"])
    assert abs(eff_b - 0.7) < 1 / math.sqrt(n)
    assert row["signal_eff"] == pytest.approx(eff_b)


def test_table_agrees_with_binary_rejection_at() -> None:
    disc, labels = gaussian_discriminants(5000, seed=2)
    for row in rejection_table(disc, labels):
        sel = labels != 1
        ref = rejection_at(disc[sel], labels[sel] == 2, row["working_point"])
        assert row["cut"] == ref["cut"]
        assert row["light"]["rejection"] == pytest.approx(ref["rejection"])
        assert row["light"]["error"] == pytest.approx(ref["error"])


def test_c_tagging_table_has_light_and_b_backgrounds() -> None:
    disc, labels = gaussian_discriminants(5000, seed=3)
    rows = rejection_table(-np.abs(disc - 1), labels, signal=1)  # c jets peak in the middle
    assert [r["working_point"] for r in rows] == [0.6, 0.7, 0.77, 0.85]
    assert all(set(r) == {"working_point", "cut", "signal_eff", "light", "b"} for r in rows)
    assert np.all(np.diff([r["light"]["rejection"] for r in rows]) < 0)  # looser working point, lower rejection


def test_rejection_error_shrinks_like_one_over_sqrt_n() -> None:
    errors = []
    for n in (10_000, 160_000):
        disc, labels = gaussian_discriminants(n, seed=4)
        errors.append(rejection_table(disc, labels, working_points=(0.7,))[0]["light"]["error"])
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.15)


def test_no_background_passing_gives_inf_and_lower_limit() -> None:
    disc, labels = np.r_[np.zeros(50), np.full(30, 1.0), np.full(100, 2.0)], np.repeat([0, 1, 2], [50, 30, 100])
    (row,) = rejection_table(disc, labels, working_points=(0.7,))
    assert row["light"]["rejection"] == math.inf and row["light"]["lower_limit"] == pytest.approx(50 / 1.14)
    assert row["c"]["eff"] == 0.0


def test_rejection_vs_pt_uses_one_inclusive_cut() -> None:
    rng = np.random.default_rng(5)
    n = 30_000
    pt = rng.uniform(20, 300, 3 * n)
    labels = np.repeat([0, 1, 2], n)
    disc = rng.normal(labels + pt / 150, 1.0)  # every flavour scores higher at high pT
    res = rejection_vs_pt(disc, labels, pt, pt_bins=(0, 10, 20, 50, 100, 200, np.inf), working_point=0.7)
    bins = res["bins"]
    assert [b["pt_low"] for b in bins] == [20, 50, 100, 200]  # the empty 0-10 and 10-20 GeV bins are dropped
    eff = np.array([b["signal"]["eff"] for b in bins])
    n_b = np.array([b["signal"]["n"] for b in bins])
    assert np.all(np.diff(eff) > 0)  # a fixed cut: the efficiency follows the pT dependence of the score
    assert (eff * n_b).sum() / n_b.sum() == pytest.approx(np.mean(disc[labels == 2] >= res["cut"]))
    assert sum(b["light"]["n"] for b in bins) == n
    assert np.all(np.diff([b["light"]["rejection"] for b in bins]) < 0)
    assert all(0 < b["signal"]["error"] < 0.02 for b in bins)


def test_fc_scan_trades_light_for_c_rejection() -> None:
    # b jets have p_c = p_u, so D_b of b jets and the 70% cut do not depend on f_c; light jets have p_c < p_u (their
    # D_b rises with f_c) and c jets p_c > p_u (theirs falls): light rejection must fall and c rejection rise.
    rng = np.random.default_rng(6)
    n = 20_000
    p_b = np.r_[rng.uniform(0.3, 0.95, n), rng.uniform(0.0, 0.8, 2 * n)]
    rest = 1 - p_b
    share_c = np.r_[np.full(n, 0.5), np.full(n, 0.2), np.full(n, 0.8)]
    probs = np.c_[rest * (1 - share_c), rest * share_c, p_b]
    labels = np.repeat([2, 0, 1], n)
    rows = fc_scan(probs, labels)
    assert [r["f_c"] for r in rows] == list(FC_VALUES) and rows[4]["f_c"] == 0.2
    assert np.allclose([r["cut"] for r in rows], rows[0]["cut"])
    light = np.array([r["light"]["rejection"] for r in rows])
    c = np.array([r["c"]["rejection"] for r in rows])
    assert np.all(np.diff(light) <= 0) and light[0] > 2 * light[-1]
    assert np.all(np.diff(c) >= 0) and c[-1] > 2 * c[0]


def test_flavour_metrics_block_is_json_ready() -> None:
    probs, labels, pt = synthetic_tagger(4000, seed=7, separation=2.0)
    pt[:] = np.where(pt > 250, 120.0, pt)  # nothing above 250 GeV: that bin is dropped
    m = flavour_metrics(probs, labels, pt)
    json.loads(json.dumps(m))
    assert m["f_c"] == 0.2 and m["f_b"] == 0.3
    assert m["n_jets"] == {name: int(np.sum(labels == k)) for k, name in enumerate(("light", "c", "b"))}
    assert len(m["b_tagging"]) == 4 and set(m["c_tagging"][0]) >= {"light", "b"}
    assert m["b_tagging_vs_pt"]["working_point"] == 0.7
    assert m["b_tagging_vs_pt"]["bins"][-1]["pt_high"] == 250
    assert len(m["fc_scan"]) == 21
    assert m["b_tagging"][1]["cut"] == pytest.approx(m["b_tagging_vs_pt"]["cut"])


def _quadrature(table_a: list[dict], table_b: list[dict]) -> tuple[float, float]:
    a, b = table_a[0]["light"], table_b[0]["light"]
    r = a["rejection"] / b["rejection"]
    return r, r * math.hypot(a["error"] / a["rejection"], b["error"] / b["rejection"])


def test_rejection_ratio_of_a_tagger_with_itself_is_exactly_one() -> None:
    disc, labels = gaussian_discriminants(3000, 11)
    r = rejection_ratio(disc, disc, labels, n_boot=50)
    assert r["ratio"] == 1.0 and r["error"] == 0.0 and r["n_boot"] == 50


def test_paired_ratio_error_is_small_for_correlated_taggers_and_binomial_for_independent_ones() -> None:
    disc, labels = gaussian_discriminants(40000, 12)
    rng = np.random.default_rng(13)
    close = disc + rng.normal(0, 0.1, len(disc))  # nearly the same tagger: the same light jets pass both cuts
    other, _ = gaussian_discriminants(40000, 14)  # the same separation, independent scores for the same jets
    table = rejection_table(disc, labels, working_points=(0.7,))
    for partner, paired_below in ((close, 0.5), (other, None)):
        expected, quad = _quadrature(rejection_table(partner, labels, working_points=(0.7,)), table)
        r = rejection_ratio(partner, disc, labels, n_boot=300, seed=1)
        assert r["ratio"] == pytest.approx(expected, rel=1e-12)  # the central value is the tables' ratio
        if paired_below is not None:
            assert r["error"] < paired_below * quad
        else:  # independent scores: the pass counts are independent, plus the cuts' own spread
            assert 0.8 * quad < r["error"] < 1.5 * quad


# --- track origin ----------------------------------------------------------------------------------------------------


def test_origin_metrics_hand_built() -> None:
    true = np.array([[0, 0, 2, 4], [1, 2, 3, 0]])
    pred = np.array([[0, 2, 2, 4], [1, 1, 0, 0]])
    valid = np.array([[True, True, True, True], [True, True, False, False]])
    m = origin_metrics(pred, true, valid)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["n_tracks"] == 6
    pc = m["per_class"]
    assert pc["from_b"] == {"n": 2, "efficiency": 0.5, "purity": 1.0}
    assert pc["from_c"] == {"n": 1, "efficiency": 1.0, "purity": 0.5}
    assert pc["primary"] == {"n": 2, "efficiency": 0.5, "purity": 0.5}
    assert pc["other_secondary"] == {"n": 0, "efficiency": None, "purity": None}  # only on a padded track
    assert pc["pileup"] == {"n": 1, "efficiency": 1.0, "purity": 1.0}
    json.dumps(m, allow_nan=False)
    with pytest.raises(ValueError, match="origins"):
        origin_metrics(pred + 3, true, valid)


# --- vertexing -------------------------------------------------------------------------------------------------------


def perfect_scores(truth: np.ndarray) -> np.ndarray:
    return ((truth[:, :, None] == truth[:, None, :]) & (truth[:, :, None] >= 0)).astype(float)


def bfs_components(adj: np.ndarray) -> list[int]:
    label = [-1] * len(adj)
    for start in range(len(adj)):
        if label[start] >= 0:
            continue
        queue = deque([start])
        label[start] = start
        while queue:
            i = queue.popleft()
            for j in np.nonzero(adj[i])[0]:
                if label[j] < 0:
                    label[j] = start
                    queue.append(j)
    return label


def test_find_vertices_matches_a_bfs() -> None:
    rng = np.random.default_rng(8)
    n, t = 60, 12
    scores = rng.uniform(0, 1, (n, t, t)) ** 6  # sparse graphs: chains and several components
    valid = np.arange(t)[None] < rng.integers(0, t + 1, n)[:, None]
    reco = find_vertices(scores, valid, threshold=0.5)
    for k in range(n):
        v = np.nonzero(valid[k])[0]
        adj = (scores[k] + scores[k].T)[np.ix_(v, v)] / 2 > 0.5
        expected = [v[i] for i in bfs_components(adj)]  # a BFS from the lowest index names the component by it
        assert list(reco[k, v]) == expected
        assert np.all(reco[k, ~valid[k]] == -1)
    # the score is symmetrised: (0.9 + 0.2) / 2 links two tracks, (0.9 + 0.0) / 2 does not
    s = np.zeros((1, 3, 3))
    s[0, 0, 1], s[0, 1, 0], s[0, 1, 2] = 0.9, 0.2, 0.9
    assert list(find_vertices(s, np.ones((1, 3), bool))[0]) == [0, 0, 2]


def test_perfect_scores_find_every_vertex() -> None:
    truth = np.array([[0, 0, 1, 1, 1, 2, 2, -1], [1, 1, 1, 0, -1, -1, -1, -1]])
    valid = np.array([[True] * 8, [True] * 5 + [False] * 3])
    m = vertex_metrics(perfect_scores(truth), truth, valid, labels=np.array([2, 1]))
    assert m["efficiency"] == 1.0 and m["purity"] == 1.0
    assert (m["n_truth_vertices"], m["n_reco_vertices"]) == (3, 3)  # primary-dominated {0, 1} is not counted
    assert m["pair_auc"] == 1.0 and m["n_pairs"] == 28 + 10
    assert m["per_flavour"]["b"]["n_truth_vertices"] == 2 and m["per_flavour"]["c"]["efficiency"] == 1.0
    assert m["per_flavour"]["light"] == {
        "efficiency": None,
        "purity": None,
        "n_truth_vertices": 0,
        "n_found": 0,
        "n_reco_vertices": 0,
        "n_matched": 0,
        "n_jets": 0,
    }
    json.dumps(m, allow_nan=False)


def test_merged_vertices_and_fakes_lower_efficiency_and_purity() -> None:
    # jet 0: truth vertices 1 (2 tracks) and 2 (4 tracks) merged into one reco vertex of 6: vertex 2 is found
    # (4/4 of it, purity 4/6), vertex 1 is not (purity 2/6 < 50%). Jet 1: vertex 1 found, plus a fake vertex of
    # two pile-up tracks. Efficiency 2/3; purity: 2 matched of 3 non-primary reco vertices.
    truth = np.array([[1, 1, 2, 2, 2, 2, 0, 0], [1, 1, 1, 0, 0, -1, -1, -1]])
    scores = perfect_scores(truth)
    scores[0, :6, :6] = 1.0
    scores[1, 5, 6] = scores[1, 6, 5] = 0.8
    m = vertex_metrics(scores, truth, np.ones_like(truth, bool), labels=np.array([2, 0]))
    assert (m["n_truth_vertices"], m["n_found"], m["n_reco_vertices"], m["n_matched"]) == (3, 2, 3, 2)
    assert m["efficiency"] == pytest.approx(2 / 3) and m["purity"] == pytest.approx(2 / 3)
    assert m["per_flavour"]["b"]["efficiency"] == 0.5 and m["per_flavour"]["b"]["purity"] == 1.0
    assert m["per_flavour"]["light"]["efficiency"] == 1.0 and m["per_flavour"]["light"]["purity"] == 0.5


def test_sixty_five_percent_rule_and_single_tracks() -> None:
    # reco {0, 1} holds 2/3 of vertex 1 (>= 65%): found; reco {3, 4, 5} holds 3/5 of vertex 2 (< 65%): not found and
    # not matched, although pure; vertex 3's tracks stay apart, and a one-track reco vertex never counts.
    truth = np.array([[1, 1, 1, 2, 2, 2, 2, 2, 3, 3]])
    scores = np.zeros((1, 10, 10))
    for group in ([0, 1], [3, 4, 5]):
        scores[0][np.ix_(group, group)] = 1.0
    valid = np.ones_like(truth, bool)
    m = vertex_metrics(scores, truth, valid)
    assert (m["n_truth_vertices"], m["n_found"], m["n_reco_vertices"], m["n_matched"]) == (3, 1, 2, 1)
    loose = vertex_metrics(scores, truth, valid, min_match=0.5)  # 3/5 now enough; 1/2 in a one-track vertex is not
    assert (loose["n_found"], loose["n_matched"]) == (2, 2)


def test_random_scores_give_pair_auc_near_one_half() -> None:
    rng = np.random.default_rng(9)
    n, t = 300, 10
    truth = rng.integers(-1, 3, (n, t))
    m = vertex_metrics(rng.uniform(0, 1, (n, t, t)), truth, np.ones((n, t), bool))
    assert m["n_pairs"] == n * t * (t - 1) // 2
    assert abs(m["pair_auc"] - 0.5) < 0.03


# --- plots -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taggers() -> list[tuple]:
    strong, weak = synthetic_tagger(3000, seed=10, separation=2.5), synthetic_tagger(3000, seed=11, separation=1.5)
    return [("GN2-like", *strong), ("DL1-like", *weak)]


def check_png(path: Path) -> None:
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind


def test_plots_write_pngs_atomically(taggers: list[tuple], tmp_path: Path) -> None:
    name, probs, labels, _ = taggers[0]
    calls = {
        "roc": lambda out: plot_flavour_roc(taggers, out, reference="DL1-like"),
        "pt": lambda out: plot_rejection_vs_pt(taggers, out),
        "fc": lambda out: plot_fc_scan(taggers, out),
        "disc": lambda out: plot_discriminant(name, probs, labels, out),
    }
    for key, plot in calls.items():
        folder = tmp_path / key
        folder.mkdir()
        assert plot(folder / f"{key}.png") == folder / f"{key}.png"
        check_png(folder / f"{key}.png")


def test_plots_reject_unknown_reference_and_missing_pt(taggers: list[tuple], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reference"):
        plot_flavour_roc(taggers, tmp_path / "roc.png", reference="nope")
    with pytest.raises(ValueError, match="pt"):
        plot_rejection_vs_pt([t[:3] for t in taggers], tmp_path / "pt.png")
    assert list(tmp_path.iterdir()) == []
