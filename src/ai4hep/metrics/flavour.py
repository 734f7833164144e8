"""Flavour-tagging metrics for b/c/light jet taggers, with the puma / atlas-ftag-tools definitions (ATLAS GN2,
arXiv 2505.19689).

Classes are light = 0, c = 1, b = 2, and `probs` is (N, 3) with columns (p_u, p_c, p_b). The b-tagging discriminant is
D_b = ln(p_b / (f_c p_c + (1 - f_c) p_u)) and the c-tagging one D_c = ln(p_c / (f_b p_b + (1 - f_b) p_u)). The defaults
F_C = 0.2, F_B = 0.3 and the working points 60/70/77/85% are the GN2 paper's choices; every function takes them as
arguments. A working point is the cut on the discriminant keeping that fraction of signal jets; rejections follow
ai4hep.metrics.binary: 1/eps with binomial uncertainty sqrt(eps (1 - eps) / N) / eps^2, and where no background jet
passes the rejection is inf with the 68% CL lower limit N / 1.14. Track-origin and vertex ratios with an empty
denominator are None (JSON null); a rejection-table entry with no jets is NaN, as rejection_at gives.

Every function that computes a metric takes an optional keyword `weights`, one per jet (origin_metrics: one per track,
or one per jet given to all its tracks). Without it the results are those of unit weights, computed as before. With
it efficiencies are sums of passing weights over sums of weights, the working-point cut is the weighted inverted-CDF
quantile, the binomial errors and the zero-pass lower limit use N_eff = (sum w)^2 / sum w^2 in place of N, and the
entries also give `n_eff` (the `n` entries stay jet counts). Negative weights are allowed in the sums; NaN or
infinite weights and weights of the wrong length raise ValueError. See docs/metrics.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ai4hep.data.labels import FLAVOURS, LIGHT, ORIGINS, B, C
from ai4hep.metrics.binary import _as_weights, _binomial_error, _weighted_cut, _weighted_rejection, auc, n_effective

WORKING_POINTS = (0.60, 0.70, 0.77, 0.85)
F_C = 0.2  # c fraction in the b-tagging discriminant (GN2 paper)
F_B = 0.3  # b fraction in the c-tagging discriminant (GN2 paper)
PT_BINS = (20.0, 30.0, 40.0, 60.0, 80.0, 100.0, 150.0, 250.0, np.inf)  # GeV
FC_VALUES = tuple(float(f) for f in np.round(np.linspace(0.0, 1.0, 21), 6))
EPS = 1e-10  # keeps the discriminants finite where a probability is exactly zero
_CHUNK = 2048  # jets per block in the vertex code: bounds the (jets, T, T) temporaries


def _probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, float)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"probs must be (N, 3) with columns (p_u, p_c, p_b), got shape {p.shape}")
    return p


def _log_ratio(signal: np.ndarray, other: np.ndarray, light: np.ndarray, frac: float) -> np.ndarray:
    return np.log((signal + EPS) / (frac * other + (1.0 - frac) * light + EPS))


def discriminant_b(probs: np.ndarray, f_c: float = F_C) -> np.ndarray:
    """D_b = ln(p_b / (f_c p_c + (1 - f_c) p_u)); f_c trades light-jet rejection for c-jet rejection."""
    p = _probs(probs)
    return _log_ratio(p[:, B], p[:, C], p[:, LIGHT], f_c)


def discriminant_c(probs: np.ndarray, f_b: float = F_B) -> np.ndarray:
    """D_c = ln(p_c / (f_b p_b + (1 - f_b) p_u)), the c-tagging analogue of D_b."""
    p = _probs(probs)
    return _log_ratio(p[:, C], p[:, B], p[:, LIGHT], f_b)


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def working_point_cut(disc_signal: np.ndarray, eff: float, *, weights: np.ndarray | None = None) -> float:
    """The cut disc >= cut keeping at least `eff` of the signal jets (the quantile binary.rejection_at uses): the
    inverted-CDF quantile at 1 - eff, always one of the scores. With `weights` (one per signal jet) the weighted
    inverted-CDF quantile, keeping at least `eff` of the signal weight (NaN where the weights sum to <= 0)."""
    if weights is not None:
        return _weighted_cut(disc_signal, eff, weights)
    if len(disc_signal) == 0:
        return float("nan")
    return float(np.quantile(disc_signal, 1.0 - eff, method="inverted_cdf"))


def _efficiency(n_pass: int, n: int) -> dict[str, float]:
    if n == 0:
        return {"eff": float("nan"), "error": float("nan"), "n": 0}
    eff = n_pass / n
    return {"eff": eff, "error": float(np.sqrt(eff * (1 - eff) / n)), "n": n}


def _rejection(n_pass: int, n: int) -> dict[str, float]:
    """1/eps with its binomial error; the same numbers binary.rejection_at gives, for a cut fixed elsewhere."""
    if n == 0:
        return {"rejection": float("nan"), "error": float("nan"), "eff": float("nan"), "n": 0}
    if n_pass == 0:  # no background passes: quote the 68% CL limit 1/eps > n / 1.14 (one-sided, zero events)
        return {"rejection": float("inf"), "error": float("nan"), "eff": 0.0, "n": n, "lower_limit": n / 1.14}
    eff = n_pass / n
    return {"rejection": 1.0 / eff, "error": float(np.sqrt(eff * (1 - eff) / n) / eff**2), "eff": eff, "n": n}


def _n_pass(disc: np.ndarray, cut: float) -> int:
    return int(np.count_nonzero(disc >= cut))


def _pass(disc: np.ndarray, cut: float, w: np.ndarray | None) -> float:
    """Jets passing disc >= cut: their count, or with weights the sum of their weights."""
    return _n_pass(disc, cut) if w is None else float(w[disc >= cut].sum())


def _efficiency_at(disc: np.ndarray, cut: float, w: np.ndarray | None) -> dict[str, float]:
    """Efficiency {eff, error, n} of disc >= cut; with weights eps = passing weight / weight, the error with N_eff."""
    if w is None:
        return _efficiency(_n_pass(disc, cut), len(disc))
    total, n_eff = float(w.sum()), n_effective(w)
    if len(disc) == 0 or total == 0:
        return {"eff": float("nan"), "error": float("nan"), "n": len(disc), "n_eff": n_eff}
    eff = _pass(disc, cut, w) / total
    return {"eff": eff, "error": _binomial_error(eff, n_eff), "n": len(disc), "n_eff": n_eff}


def _rejection_at(disc: np.ndarray, cut: float, w: np.ndarray | None) -> dict[str, float]:
    if w is None:
        return _rejection(_n_pass(disc, cut), len(disc)) if np.isfinite(cut) else _rejection(0, 0)
    if not np.isfinite(cut):
        return _weighted_rejection(0.0, 0.0, 0.0, 0)
    return _weighted_rejection(_pass(disc, cut, w), float(w.sum()), n_effective(w), len(disc))


def _rejections(
    disc: np.ndarray, labels: np.ndarray, cut: float, signal: int, w: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Rejection of every flavour but the signal at one cut."""
    out = {}
    for k, name in enumerate(FLAVOURS):
        if k != signal:
            m = labels == k
            out[name] = _rejection_at(disc[m], cut, None if w is None else w[m])
    return out


def rejection_table(
    disc: np.ndarray,
    labels: np.ndarray,
    signal: int = B,
    working_points: Sequence[float] = WORKING_POINTS,
    *,
    weights: np.ndarray | None = None,
) -> list[dict]:
    """Per working point: the cut on `disc`, the signal efficiency it really gives (>= the working point; ties and
    finite samples) and each background flavour's rejection {rejection, error, eff, n}. With `weights` (one per jet):
    weighted cut and efficiencies, errors with N_eff, and `n_eff` next to each `n`."""
    disc, labels = np.asarray(disc, float), np.asarray(labels)
    w = _as_weights(weights, len(disc))
    is_sig = labels == signal
    sig, w_sig = disc[is_sig], None if w is None else w[is_sig]
    rows = []
    for wp in working_points:
        cut = working_point_cut(sig, wp, weights=w_sig)
        row = {"working_point": float(wp), "cut": cut, "signal_eff": _efficiency_at(sig, cut, w_sig)["eff"]}
        rows.append(row | _rejections(disc, labels, cut, signal, w))
    return rows


def at_working_point(table: list[dict], working_point: float) -> dict:
    """The row of a rejection table at one working point (e.g. 0.7 of a flavour_metrics' b_tagging table)."""
    return next(r for r in table if abs(r["working_point"] - working_point) < 1e-6)


def rejection_ratio(
    disc_a: np.ndarray,
    disc_b: np.ndarray,
    labels: np.ndarray,
    working_point: float = 0.7,
    background: int = LIGHT,
    signal: int = B,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """Rejection of tagger a over tagger b at one working point, with a paired bootstrap error.

    Both taggers are scored on the same jets, so their rejections are correlated (the hardest background jets pass
    both cuts); adding the two binomial errors in quadrature treats them as independent samples and overstates the
    ratio's uncertainty. Each replica draws the signal and the background jets with replacement, once for both
    taggers, and recomputes both cuts, so the error also holds the cut's own fluctuation. Replicas in which no
    background jet passes tagger a's cut are left out (`n_boot` counts the rest).

    With `weights` (one per jet) the cuts and rejections are the weighted ones, and each resampled jet keeps its
    weight (the bootstrap then also holds the weights' own spread; no N_eff is needed). A replica whose passing
    background weight for tagger a is <= 0 is left out."""
    disc_a, disc_b, labels = np.asarray(disc_a, float), np.asarray(disc_b, float), np.asarray(labels)
    w = _as_weights(weights, len(labels))
    is_sig, is_bkg = labels == signal, labels == background
    sig_a, sig_b = disc_a[is_sig], disc_b[is_sig]
    bkg_a, bkg_b = disc_a[is_bkg], disc_b[is_bkg]
    if min(len(sig_a), len(bkg_a)) == 0:
        raise ValueError(f"rejection_ratio needs {FLAVOURS[signal]} and {FLAVOURS[background]} jets")
    w_sig, w_bkg = (None, None) if w is None else (w[is_sig], w[is_bkg])

    def ratio(si: np.ndarray | slice, bi: np.ndarray | slice) -> float:
        ws, wb = (None, None) if w is None else (w_sig[si], w_bkg[bi])
        pass_a = _pass(bkg_a[bi], working_point_cut(sig_a[si], working_point, weights=ws), wb)
        pass_b = _pass(bkg_b[bi], working_point_cut(sig_b[si], working_point, weights=ws), wb)
        return pass_b / pass_a if pass_a > 0 else float("nan")  # (n / pass_a) / (n / pass_b)

    rng = np.random.default_rng(seed)
    reps = np.array(
        [ratio(rng.integers(0, len(sig_a), len(sig_a)), rng.integers(0, len(bkg_a), len(bkg_a))) for _ in range(n_boot)]
    )
    reps = reps[np.isfinite(reps)]
    err = float(np.std(reps, ddof=1)) if len(reps) > 1 else float("nan")
    return {"ratio": ratio(slice(None), slice(None)), "error": err, "n_boot": len(reps)}


def rejection_vs_pt(
    disc: np.ndarray,
    labels: np.ndarray,
    pt: np.ndarray,
    pt_bins: Sequence[float] = PT_BINS,
    working_point: float = 0.7,
    signal: int = B,
    *,
    weights: np.ndarray | None = None,
) -> dict:
    """Signal efficiency and background rejections per pT bin at one inclusive cut (the "fixed working point": the cut
    comes from all signal jets, so the efficiency varies with pT as it does in an analysis). Bins [low, high) with no
    jets are dropped. With `weights` (one per jet): the weighted cut, efficiencies and rejections (errors with N_eff),
    the weighted mean pT per bin and each bin's `sum_weights`."""
    disc, labels, pt = np.asarray(disc, float), np.asarray(labels), np.asarray(pt, float)
    w = _as_weights(weights, len(disc))
    is_sig = labels == signal
    cut = working_point_cut(disc[is_sig], working_point, weights=None if w is None else w[is_sig])
    edges = np.asarray(pt_bins, float)
    bins = []
    for lo, hi in itertools.pairwise(edges):
        m = (pt >= lo) & (pt < hi)
        if not m.any():
            continue
        d, lab, wm = disc[m], labels[m], None if w is None else w[m]
        if wm is None:
            pt_mean, extra = float(pt[m].mean()), {}
        else:
            total = float(wm.sum())
            pt_mean, extra = (float(np.sum(wm * pt[m]) / total) if total else float("nan")), {"sum_weights": total}
        row = {"pt_low": float(lo), "pt_high": float(hi), "pt_mean": pt_mean, "n_jets": int(m.sum()), **extra}
        row["signal"] = _efficiency_at(d[lab == signal], cut, None if wm is None else wm[lab == signal])
        bins.append(row | _rejections(d, lab, cut, signal, wm))
    return {"working_point": float(working_point), "cut": cut, "signal": FLAVOURS[signal], "bins": bins}


def fc_scan(
    probs: np.ndarray,
    labels: np.ndarray,
    f_c_values: Sequence[float] = FC_VALUES,
    working_point: float = 0.7,
    *,
    weights: np.ndarray | None = None,
) -> list[dict]:
    """Light and c rejection of D_b at one working point for each f_c: the trade-off that picks f_c. With `weights`
    (one per jet) the weighted rejection tables."""
    p = _probs(probs)
    rows = []
    for f in f_c_values:
        (row,) = rejection_table(discriminant_b(p, f), labels, B, (working_point,), weights=weights)
        rows.append({"f_c": float(f), **row})
    return rows


def _track_weights(weights: np.ndarray, shape: tuple[int, ...], valid: np.ndarray) -> np.ndarray:
    """Per-track weights on the valid tracks, from one weight per track (shape of pred) or one per jet (first axis)."""
    w = np.asarray(weights, float)
    if w.shape == shape[:1] and len(shape) > 1:
        w = np.broadcast_to(w.reshape(-1, *([1] * (len(shape) - 1))), shape)
    elif w.shape != shape:
        raise ValueError(
            f"weights has shape {w.shape}, expected {shape} (one per track) or {shape[:1]} (one per jet, given to its "
            "tracks)"
        )
    return _as_weights(w[valid], int(valid.sum()), "valid track")


def origin_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    valid: np.ndarray,
    classes: Sequence[str] = ORIGINS,
    *,
    weights: np.ndarray | None = None,
) -> dict[str, object]:
    """Track-origin classification over valid tracks: accuracy, and per true class its count, efficiency (true-class
    tracks predicted as it) and purity (tracks predicted as it that truly are); None where nothing to divide by.

    `weights`: one per track (the shape of `pred`) or one per jet (its first axis), which each of the jet's tracks
    takes; only valid tracks' weights are read (padding may hold anything, NaN included). With weights, accuracy,
    efficiency and purity are ratios of weight sums, `confusion` holds weight sums, and `sum_weights` is added overall
    and per class; `n` and `n_tracks` stay track counts."""
    valid = np.asarray(valid, bool)
    pred = np.asarray(pred)
    p, t, k = pred[valid].astype(np.int64), np.asarray(true)[valid].astype(np.int64), len(classes)
    if ((p < 0) | (p >= k) | (t < 0) | (t >= k)).any():
        raise ValueError(f"track origins must lie in 0..{k - 1} ({', '.join(classes)}) on valid tracks")
    conf = np.bincount(t * k + p, minlength=k * k).reshape(k, k)  # rows: true class, columns: predicted
    if weights is not None:
        w = _track_weights(weights, pred.shape, np.broadcast_to(valid, pred.shape))
        conf_w = np.bincount(t * k + p, weights=w, minlength=k * k).reshape(k, k)
        w_true, w_pred, w_hit = conf_w.sum(axis=1), conf_w.sum(axis=0), np.diag(conf_w)
        n_true = conf.sum(axis=1)
        per_class = {
            name: {
                "n": int(n_true[i]),
                "efficiency": _ratio(w_hit[i], w_true[i]),
                "purity": _ratio(w_hit[i], w_pred[i]),
                "sum_weights": float(w_true[i]),
            }
            for i, name in enumerate(classes)
        }
        return {
            "accuracy": _ratio(w_hit.sum(), conf_w.sum()),
            "n_tracks": int(conf.sum()),
            "sum_weights": float(conf_w.sum()),
            "per_class": per_class,
            "confusion": conf_w.tolist(),
        }
    n_true, n_pred, hit = conf.sum(axis=1), conf.sum(axis=0), np.diag(conf)
    per_class = {
        name: {"n": int(n_true[i]), "efficiency": _ratio(hit[i], n_true[i]), "purity": _ratio(hit[i], n_pred[i])}
        for i, name in enumerate(classes)
    }
    return {
        "accuracy": _ratio(hit.sum(), conf.sum()),
        "n_tracks": int(conf.sum()),
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def _symmetric(scores: np.ndarray) -> np.ndarray:
    return (scores + scores.transpose(0, 2, 1)) / 2


def _components(sym: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the graph joining valid tracks with sym > threshold, each named by its lowest track
    index (-1 for padding). Min-label propagation with pointer jumping, all jets at once: a handful of numpy passes
    instead of a Python BFS per jet."""
    n, t = valid.shape
    adj = (sym > threshold) & valid[:, :, None] & valid[:, None, :]
    adj |= np.eye(t, dtype=bool) & valid[:, :, None]  # a valid track is at least its own vertex
    lab = np.broadcast_to(np.arange(t), (n, t)).copy()
    while True:
        new = np.where(valid, np.where(adj, lab[:, None, :], t).min(axis=2), lab)
        new = np.take_along_axis(new, new, axis=1)  # jump to the label's label: same component, index no larger
        if np.array_equal(new, lab):
            return np.where(valid, lab, -1)
        lab = new


def find_vertices(pair_scores: np.ndarray, valid: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Reconstructed vertex per track (N, T): connected components of valid tracks whose symmetrised pair score
    (s + s^T) / 2 exceeds `threshold`, named by their lowest track index; -1 on padding."""
    scores, valid = np.asarray(pair_scores, float), np.asarray(valid, bool)
    out = np.empty(valid.shape, np.int64)
    for lo in range(0, len(valid), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        out[sl] = _components(_symmetric(scores[sl]), valid[sl], threshold)
    return out


def _vertex_counts(
    reco: np.ndarray, truth: np.ndarray, valid: np.ndarray, min_match: float, min_purity: float
) -> np.ndarray:
    """Per jet (n, 4): truth secondary vertices, of them found, reco vertices not primary-dominated, of them matched."""
    n, t = valid.shape
    jet = np.broadcast_to(np.arange(n)[:, None], (n, t))[valid]
    ids, cat = np.unique(truth[valid], return_inverse=True)  # dense truth categories in this block
    k = len(ids)
    both = np.bincount((jet * t + reco[valid]) * k + cat.ravel(), minlength=n * t * k).reshape(n, t, k)
    n_reco, n_truth = both.sum(axis=2), both.sum(axis=1)  # tracks per reco vertex (n, t), per truth vertex (n, k)
    tol = 1e-9  # 0.65 * 20 must accept 13 tracks
    match = (
        (both > 0)
        & (both >= min_match * n_truth[:, None, :] - tol)
        & (both >= min_purity * n_reco[:, :, None] - tol)
        & (n_reco[:, :, None] >= 2)
    )
    secondary = (ids >= 1)[None, :] & (n_truth >= 2)
    found = secondary & match.any(axis=1)
    primary = both[:, :, ids == 0].sum(axis=2)
    reco_sv = (n_reco >= 2) & ~(primary > n_reco / 2)
    matched = reco_sv & (match & secondary[:, None, :]).any(axis=2)
    return np.stack([secondary.sum(1), found.sum(1), reco_sv.sum(1), matched.sum(1)], axis=1)


def _vertex_summary(counts: np.ndarray, w: np.ndarray | None = None) -> dict[str, object]:
    n_truth, n_found, n_reco, n_matched = (int(c) for c in counts.sum(axis=0))
    if w is None:
        eff, purity = _ratio(n_found, n_truth), _ratio(n_matched, n_reco)
    else:  # each jet's vertices count with the jet's weight
        w_truth, w_found, w_reco, w_matched = (float(c) for c in (w[:, None] * counts).sum(axis=0))
        eff, purity = _ratio(w_found, w_truth), _ratio(w_matched, w_reco)
    out = {
        "efficiency": eff,
        "purity": purity,
        "n_truth_vertices": n_truth,
        "n_found": n_found,
        "n_reco_vertices": n_reco,
        "n_matched": n_matched,
        "n_jets": len(counts),
    }
    return out if w is None else out | {"sum_weights": float(w.sum())}


def vertex_metrics(
    pair_scores: np.ndarray,
    true_vertex: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray | None = None,
    threshold: float = 0.5,
    min_match: float = 0.65,
    min_purity: float = 0.5,
    *,
    weights: np.ndarray | None = None,
) -> dict[str, object]:
    """Secondary-vertex finding from pair scores, with the GN1/GN2 papers' idea of a found vertex.

    pair_scores (N, T, T): probability that tracks i and j share a vertex; true_vertex (N, T): 0 = primary vertex,
    1.. = displaced truth vertices in the jet, < 0 = pile-up / none; valid (N, T) marks real tracks.

    - reco vertices: per jet, connected components of valid tracks joined where (s + s^T) / 2 > threshold; only those
      with >= 2 tracks count.
    - truth secondary vertices: index >= 1 with >= 2 valid tracks.
    - a truth vertex is found if a reco vertex holds >= min_match (65%) of its tracks and >= min_purity (50%) of that
      reco vertex's tracks are from it. efficiency = found / truth secondary vertices.
    - purity: among reco vertices not primary-dominated (more than half their tracks from index 0), the fraction
      matching a truth secondary vertex by the same rule.
    - pair_auc: AUC of the symmetrised score for "same vertex" (both indices >= 0 and equal) over valid pairs i < j.

    With `labels` (jet flavour, N) efficiency and purity also per flavour (light/c/b).

    `weights` (one per jet, N): each vertex and each track pair counts with its jet's weight, in the efficiency,
    the purity and the pair AUC (weighted Mann-Whitney); the n_* entries stay counts and `sum_weights` is added.
    """
    scores, valid = np.asarray(pair_scores, float), np.asarray(valid, bool)
    w = _as_weights(weights, len(valid))
    truth = np.where(np.asarray(true_vertex) < 0, -1, np.asarray(true_vertex)).astype(np.int64)
    iu, ju = np.triu_indices(valid.shape[1], 1)
    counts, pair_score, pair_same, pair_weight = [], [], [], []
    for lo in range(0, len(valid), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        sym, v, tv = _symmetric(scores[sl]), valid[sl], truth[sl]
        counts.append(_vertex_counts(_components(sym, v, threshold), tv, v, min_match, min_purity))
        pair_valid = v[:, iu] & v[:, ju]
        pair_score.append(sym[:, iu, ju][pair_valid])
        pair_same.append(((tv[:, iu] >= 0) & (tv[:, iu] == tv[:, ju]))[pair_valid])
        if w is not None:
            pair_weight.append(np.broadcast_to(w[sl][:, None], pair_valid.shape)[pair_valid])
    per_jet = np.concatenate(counts) if counts else np.zeros((0, 4), np.int64)
    same = np.concatenate(pair_same) if pair_same else np.zeros(0, bool)
    pair_w = None if w is None else np.concatenate(pair_weight) if pair_weight else np.zeros(0)
    pair_auc = auc(np.concatenate(pair_score), same, weights=pair_w) if len(same) else float("nan")
    out = {"threshold": threshold, "min_match": min_match, "min_purity": min_purity, **_vertex_summary(per_jet, w)}
    out |= {"pair_auc": pair_auc if np.isfinite(pair_auc) else None, "n_pairs": len(same)}
    if labels is not None:
        labels = np.asarray(labels)
        out["per_flavour"] = {
            name: _vertex_summary(per_jet[labels == k], None if w is None else w[labels == k])
            for k, name in enumerate(FLAVOURS)
        }
    return out


def flavour_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    pt: np.ndarray,
    f_c: float = F_C,
    f_b: float = F_B,
    pt_bins: Sequence[float] | None = None,
    *,
    weights: np.ndarray | None = None,
) -> dict[str, object]:
    """The flavour-tagging block of a metrics.json: b- and c-tagging tables, b-tagging vs pT at 70%, the f_c scan.
    With `weights` (one per jet) every part is weighted and `sum_weights` per flavour is added; `n_jets` stays
    counts."""
    p, labels = _probs(probs), np.asarray(labels)
    w = _as_weights(weights, len(p))
    d_b = discriminant_b(p, f_c)
    out = {
        "f_c": float(f_c),
        "f_b": float(f_b),
        "n_jets": {name: int(np.sum(labels == k)) for k, name in enumerate(FLAVOURS)},
    }
    if w is not None:
        out["sum_weights"] = {name: float(w[labels == k].sum()) for k, name in enumerate(FLAVOURS)}
    bins = PT_BINS if pt_bins is None else pt_bins
    return out | {
        "b_tagging": rejection_table(d_b, labels, B, weights=w),
        "c_tagging": rejection_table(discriminant_c(p, f_b), labels, C, weights=w),
        "b_tagging_vs_pt": rejection_vs_pt(d_b, labels, pt, bins, 0.7, B, weights=w),
        "fc_scan": fc_scan(p, labels, weights=w),
    }
