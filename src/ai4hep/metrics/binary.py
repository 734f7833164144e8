"""Binary-classifier metrics with the puma / atlas-ftag-tools definitions.

Efficiency eps = fraction of a class passing a cut on the discriminant; rejection = 1/eps_B at the cut that keeps a
fraction eps_S of signal; its uncertainty is binomial: sigma(1/eps) = sqrt(eps (1 - eps) / N) / eps^2.

Every function takes an optional keyword `weights` (one per jet; per-event weights from the generator or a
reweighting). Without it the results are those of unit weights, computed as before. With it a class's efficiency is
sum of passing weights / sum of weights, and the binomial errors use the effective number of events
N_eff = (sum w)^2 / sum w^2 in place of N. Negative weights are allowed in the sums (N_eff then still stands in for N,
which is only an approximation); NaN or infinite weights, or weights of the wrong length, raise ValueError. The
definitions, and where they differ from scikit-learn and atlas-ftag-tools on purpose, are in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _as_weights(weights: np.ndarray | None, n: int, what: str = "jet") -> np.ndarray | None:
    """The weights as a float array of length n (one per `what`), or None; ValueError naming what is wrong."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1:
        raise ValueError(f"weights must be one-dimensional (one per {what}), got shape {w.shape}")
    if len(w) != n:
        raise ValueError(f"weights has length {len(w)}, expected {n} (one per {what})")
    bad = ~np.isfinite(w)
    if bad.any():
        kind = "NaN" if np.isnan(w).any() else "infinite values"
        raise ValueError(f"weights contain {kind} ({int(bad.sum())} of {n}); every {what} needs a finite weight")
    return w


def n_effective(weights: np.ndarray) -> float:
    """Effective number of events (sum w)^2 / sum w^2 (N for unit weights; 0 for none or all-zero weights)."""
    w = np.asarray(weights, float)
    sum_w2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / sum_w2 if sum_w2 > 0 else 0.0


def _binomial_error(eff: float, n: float) -> float:
    """sqrt(eps (1 - eps) / N); NaN where eps lies outside [0, 1] (negative weights) or N <= 0."""
    if not (n > 0 and 0.0 <= eff <= 1.0):
        return float("nan")
    return float(np.sqrt(eff * (1 - eff) / n))


def _weighted_rejection(w_pass: float, w_total: float, n_eff: float, n: int) -> dict[str, float]:
    """1/eps for eps = w_pass / w_total with error sigma_eps / eps^2, sigma_eps the binomial error with N_eff.

    eps == 0 (no background weight passes) gives inf with the 68% CL lower limit N_eff / 1.14; eps < 0 (negative
    weights outweigh the passing positive ones) has no rejection and gives NaN. `n`, the jet count, is kept in the
    result next to `n_eff`."""
    if n == 0 or w_total == 0:
        return {"rejection": float("nan"), "error": float("nan"), "eff": float("nan"), "n": n, "n_eff": n_eff}
    eff = w_pass / w_total
    out = {"eff": eff, "n": n, "n_eff": n_eff}
    if eff == 0:
        return {"rejection": float("inf"), "error": float("nan"), **out, "lower_limit": n_eff / 1.14}
    if eff < 0:
        return {"rejection": float("nan"), "error": float("nan"), **out}
    return {"rejection": 1.0 / eff, "error": _binomial_error(eff, n_eff) / eff**2, **out}


def _weighted_cut(score: np.ndarray, eff: float, weights: np.ndarray) -> float:
    """The weighted inverted-CDF quantile at 1 - eff: the lowest score t whose cumulative weight (of the scores
    <= t, ties summed first) reaches (1 - eff) * sum w. For unit weights this is exactly
    np.quantile(score, 1 - eff, method="inverted_cdf"); the cut is always one of the scores and the weight passing
    score >= t is at least eff of the total (for non-negative weights). NaN without scores or with sum w <= 0."""
    s = np.asarray(score, float)
    w = _as_weights(weights, len(s))
    if not 0.0 <= eff <= 1.0:
        raise ValueError(f"efficiency must lie in [0, 1], got {eff}")
    if len(s) == 0:
        return float("nan")
    values, inverse = np.unique(s, return_inverse=True)
    cum = np.cumsum(np.bincount(inverse.ravel(), weights=w, minlength=len(values)))
    total = cum[-1]
    if not total > 0:
        return float("nan")
    reached = cum >= (1.0 - eff) * total  # (1 - eff) * n, the product numpy's inverted_cdf index starts from
    return float(values[np.argmax(reached)])  # the first distinct score reaching it (the last one always does)


def roc_curve(
    score: np.ndarray, is_signal: np.ndarray, weight: np.ndarray | None = None, *, weights: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """(eps_S, eps_B, thresholds) for cuts score >= t, from the highest threshold down; one point per distinct score.

    `weights` (or the older positional `weight`; not both): one per jet, eps = passing weight / total weight."""
    if weight is not None and weights is not None:
        raise ValueError("roc_curve takes `weight` or `weights`, not both")
    weight = _as_weights(weights if weights is not None else weight, len(score))
    order = np.argsort(-score, kind="stable")
    s, y = score[order], is_signal[order].astype(bool)
    w = np.ones(len(s)) if weight is None else np.asarray(weight, float)[order]
    tp, fp = np.cumsum(w * y), np.cumsum(w * ~y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # one point per distinct threshold
    return tp[last] / max(tp[-1], 1e-300), fp[last] / max(fp[-1], 1e-300), s[last]


def auc(score: np.ndarray, is_signal: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, from ranks (ties count one half).

    With `weights` (one per jet) each signal-background pair counts w_s * w_b (ties one half), which is
    scikit-learn's roc_auc_score(is_signal, score, sample_weight=weights); NaN without signal or background jets or
    where a class's weights sum to zero."""
    y = np.asarray(is_signal, bool)
    w = _as_weights(weights, len(y))
    n_s, n_b = int(y.sum()), int((~y).sum())
    if n_s == 0 or n_b == 0:
        return float("nan")
    if w is not None:
        return _weighted_auc(np.asarray(score, float), y, w)
    ranks = _ranks(score)
    return float((ranks[y].sum() - n_s * (n_s + 1) / 2) / (n_s * n_b))


def _weighted_auc(score: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    values, inverse = np.unique(score, return_inverse=True)
    inverse = inverse.ravel()
    w_s = np.bincount(inverse, weights=np.where(y, w, 0.0), minlength=len(values))  # signal weight per distinct score
    w_b = np.bincount(inverse, weights=np.where(y, 0.0, w), minlength=len(values))
    below_b = np.cumsum(w_b) - w_b  # background weight strictly below each score
    den = w_s.sum() * w_b.sum()
    return float(np.sum(w_s * (below_b + 0.5 * w_b)) / den) if den != 0 else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), float)
    ranks[order] = np.arange(1, len(x) + 1)
    uniq, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(uniq) < len(x):  # average ranks over ties
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def auc_error(
    a: float,
    n_s: float,
    n_b: float,
    *,
    weights: np.ndarray | None = None,
    is_signal: np.ndarray | None = None,
) -> float:
    """Hanley-McNeil (1982) standard error of an AUC from the signal and background counts.

    With `weights` (one per jet, with `is_signal` saying which jets are signal; n_s + n_b jets) the counts are the
    effective ones, N_eff = (sum w)^2 / sum w^2 of each class. n_s and n_b may also be given as effective counts
    directly (floats)."""
    if weights is not None:
        if is_signal is None:
            raise ValueError("auc_error with weights needs is_signal, to split the weights into signal and background")
        y = np.asarray(is_signal, bool)
        w = _as_weights(weights, len(y))
        if (int(y.sum()), int((~y).sum())) != (n_s, n_b):
            counts = f"{int(y.sum())} signal and {int((~y).sum())} background jets"
            raise ValueError(f"is_signal holds {counts}, but n_s, n_b = {n_s}, {n_b}")
        n_s, n_b = n_effective(w[y]), n_effective(w[~y])
    if not (n_s and n_b) or not np.isfinite(a):
        return float("nan")
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_s - 1) * (q1 - a * a) + (n_b - 1) * (q2 - a * a)) / (n_s * n_b)
    return float(np.sqrt(max(var, 0.0)))


def rejection_at(
    score: np.ndarray, is_signal: np.ndarray, eff: float, *, weights: np.ndarray | None = None
) -> dict[str, float]:
    """Background rejection 1/eps_B at signal efficiency `eff`, with its binomial uncertainty and the cut used.

    The cut is the inverted-CDF quantile of the signal scores at 1 - eff (a real score; at least `eff` of the signal
    passes score >= cut). With `weights` (one per jet): the weighted quantile (_weighted_cut), eps_B = passing
    background weight / background weight, the error with the background's N_eff, and `n_eff` in the result."""
    y = np.asarray(is_signal, bool)
    w = _as_weights(weights, len(y))
    sig, bkg = score[y], score[~y]
    if len(sig) == 0 or len(bkg) == 0:
        return {"rejection": float("nan"), "error": float("nan"), "cut": float("nan"), "eff_b": float("nan")}
    if w is not None:
        w_b = w[~y]
        cut = _weighted_cut(sig, eff, w[y])
        r = _weighted_rejection(float(w_b[bkg >= cut].sum()), float(w_b.sum()), n_effective(w_b), len(bkg))
        out = {"rejection": r["rejection"], "error": r["error"], "cut": cut, "eff_b": r["eff"], "n_eff": r["n_eff"]}
        return out | ({"lower_limit": r["lower_limit"]} if "lower_limit" in r else {})
    cut = float(np.quantile(sig, 1.0 - eff, method="inverted_cdf"))
    eff_b = float(np.mean(bkg >= cut))
    n_b = len(bkg)
    if eff_b == 0:  # no background passes: quote the 68% CL limit 1/eps_B > n_B / 1.14 (one-sided, zero events)
        return {"rejection": float("inf"), "error": float("nan"), "cut": cut, "eff_b": 0.0, "lower_limit": n_b / 1.14}
    rej = 1.0 / eff_b
    err = np.sqrt(eff_b * (1 - eff_b) / n_b) / eff_b**2
    return {"rejection": rej, "error": float(err), "cut": cut, "eff_b": eff_b}


def against_background(
    probs: np.ndarray, labels: np.ndarray, background: int = 0, *, weights: np.ndarray | None = None
) -> Iterator[tuple]:
    """(class k, score, is_signal, selected jets) for each signal class: p_1 over all jets with two classes, else
    p_k / (p_k + p_bkg) over the jets of class k and of the background class (the JetClass convention).

    With `weights` (one per jet) each tuple has a fifth entry, the weights of the selected jets."""
    w = _as_weights(weights, len(labels))
    extra = (lambda sel: ()) if w is None else (lambda sel: (w[sel],))
    if probs.shape[1] == 2:
        sel = np.ones(len(labels), dtype=bool)
        yield 1, probs[:, 1], labels == 1, sel, *extra(sel)
        return
    for k in range(probs.shape[1]):
        if k == background:
            continue
        sel = (labels == k) | (labels == background)
        p = probs[sel]
        yield k, p[:, k] / np.maximum(p[:, k] + p[:, background], 1e-12), labels[sel] == k, sel, *extra(sel)


def accuracy(probs: np.ndarray, labels: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """Fraction of jets whose highest-probability class is the true one; with `weights` (one per jet) the weighted
    fraction sum w [correct] / sum w (NaN where the weights sum to zero)."""
    correct = probs.argmax(axis=1) == labels
    w = _as_weights(weights, len(correct))
    if w is None:
        return float(np.mean(correct))
    total = float(w.sum())
    return float(w[correct].sum() / total) if total != 0 else float("nan")
