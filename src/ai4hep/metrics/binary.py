"""Binary-classifier metrics with the puma / atlas-ftag-tools definitions.

Efficiency eps = fraction of a class passing a cut on the discriminant; rejection = 1/eps_B at the cut that keeps a
fraction eps_S of signal; its uncertainty is binomial: sigma(1/eps) = sqrt(eps (1 - eps) / N) / eps^2.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def roc_curve(score: np.ndarray, is_signal: np.ndarray, weight: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(eps_S, eps_B, thresholds) for cuts score >= t, from the highest threshold down."""
    order = np.argsort(-score, kind="stable")
    s, y = score[order], is_signal[order].astype(bool)
    w = np.ones(len(s)) if weight is None else np.asarray(weight, float)[order]
    tp, fp = np.cumsum(w * y), np.cumsum(w * ~y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # one point per distinct threshold
    return tp[last] / max(tp[-1], 1e-300), fp[last] / max(fp[-1], 1e-300), s[last]


def auc(score: np.ndarray, is_signal: np.ndarray) -> float:
    """Area under the ROC curve from ranks (ties count one half)."""
    y = np.asarray(is_signal, bool)
    n_s, n_b = int(y.sum()), int((~y).sum())
    if n_s == 0 or n_b == 0:
        return float("nan")
    ranks = _ranks(score)
    return float((ranks[y].sum() - n_s * (n_s + 1) / 2) / (n_s * n_b))


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), float)
    ranks[order] = np.arange(1, len(x) + 1)
    uniq, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(uniq) < len(x):  # average ranks over ties
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def auc_error(a: float, n_s: int, n_b: int) -> float:
    """Hanley-McNeil (1982) standard error of an AUC."""
    if not (n_s and n_b) or not np.isfinite(a):
        return float("nan")
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_s - 1) * (q1 - a * a) + (n_b - 1) * (q2 - a * a)) / (n_s * n_b)
    return float(np.sqrt(max(var, 0.0)))


def rejection_at(score: np.ndarray, is_signal: np.ndarray, eff: float) -> dict[str, float]:
    """Background rejection 1/eps_B at signal efficiency `eff`, with its binomial uncertainty and the cut used."""
    y = np.asarray(is_signal, bool)
    sig, bkg = score[y], score[~y]
    if len(sig) == 0 or len(bkg) == 0:
        return {"rejection": float("nan"), "error": float("nan"), "cut": float("nan"), "eff_b": float("nan")}
    cut = float(np.quantile(sig, 1.0 - eff, method="inverted_cdf"))
    eff_b = float(np.mean(bkg >= cut))
    n_b = len(bkg)
    if eff_b == 0:  # no background passes: quote the 68% CL limit 1/eps_B > n_B / 1.14 (one-sided, zero events)
        return {"rejection": float("inf"), "error": float("nan"), "cut": cut, "eff_b": 0.0, "lower_limit": n_b / 1.14}
    rej = 1.0 / eff_b
    err = np.sqrt(eff_b * (1 - eff_b) / n_b) / eff_b**2
    return {"rejection": rej, "error": float(err), "cut": cut, "eff_b": eff_b}


def against_background(
    probs: np.ndarray, labels: np.ndarray, background: int = 0
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(class k, score, is_signal, selected jets) for each signal class: p_1 over all jets with two classes, else
    p_k / (p_k + p_bkg) over the jets of class k and of the background class (the JetClass convention)."""
    if probs.shape[1] == 2:
        yield 1, probs[:, 1], labels == 1, np.ones(len(labels), dtype=bool)
        return
    for k in range(probs.shape[1]):
        if k == background:
            continue
        sel = (labels == k) | (labels == background)
        p = probs[sel]
        yield k, p[:, k] / np.maximum(p[:, k] + p[:, background], 1e-12), labels[sel] == k, sel


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == labels))
