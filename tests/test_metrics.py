"""Metric definitions against analytic values (the puma / atlas-ftag-tools conventions)."""

from __future__ import annotations

import math

import numpy as np

from ai4hep.metrics.binary import auc, auc_error, rejection_at, roc_curve


def test_rejection_matches_analytic_uniforms() -> None:
    # background U(0,1), signal U(0.2,1.2): eps_S = 0.5 needs cut 0.7, where eps_B = 0.3 -> rejection 10/3.
    rng = np.random.default_rng(1)
    bkg, sig = rng.uniform(0, 1, 200_000), rng.uniform(0.2, 1.2, 200_000)
    score = np.r_[sig, bkg]
    is_sig = np.r_[np.ones(len(sig), bool), np.zeros(len(bkg), bool)]
    r = rejection_at(score, is_sig, 0.5)
    assert abs(r["cut"] - 0.7) < 0.005
    assert abs(r["rejection"] - 10 / 3) < 4 * r["error"] + 1e-3
    # binomial error: sqrt(eps (1-eps) / N) / eps^2
    assert math.isclose(r["error"], math.sqrt(0.3 * 0.7 / len(bkg)) / 0.09, rel_tol=0.02)


def test_auc_matches_gaussian_shift_and_error_covers_it() -> None:
    # two unit Gaussians a distance d apart: AUC = Phi(d / sqrt(2))
    rng = np.random.default_rng(2)
    d = 1.0
    sig, bkg = rng.normal(d, 1, 4000), rng.normal(0, 1, 4000)
    truth = 0.5 * (1 + math.erf(d / 2))
    a = auc(np.r_[sig, bkg], np.r_[np.ones(4000, bool), np.zeros(4000, bool)])
    err = auc_error(a, 4000, 4000)
    assert 0.003 < err < 0.01
    assert abs(a - truth) < 4 * err


def test_auc_is_area_under_roc_and_handles_ties() -> None:
    rng = np.random.default_rng(3)
    score = rng.integers(0, 5, 3000).astype(float)  # heavy ties
    is_sig = rng.uniform(size=3000) < 0.2 + 0.15 * score
    eff_s, eff_b, _ = roc_curve(score, is_sig)
    trapezoid = np.trapezoid(np.r_[0, eff_s], np.r_[0, eff_b])
    assert abs(auc(score, is_sig) - trapezoid) < 1e-9


def test_zero_background_gives_a_lower_limit() -> None:
    score = np.r_[np.full(100, 2.0), np.zeros(50)]
    r = rejection_at(score, np.r_[np.ones(100, bool), np.zeros(50, bool)], 0.5)
    assert r["rejection"] == float("inf") and r["lower_limit"] > 40
