"""Task-generic evaluation: the registry picks the task from a run's classes or its recorded task, and per-jet
weights reach every metric (integer weights give the numbers of jets repeated that many times)."""

from __future__ import annotations

import numpy as np
import pytest

from ai4hep.errors import UserError
from ai4hep.evaluate import TASKS, Predictions, compute_metrics
from ai4hep.evaluate.tasks import get_task, task_of_metrics


def _pred(classes: list[str], n: int = 600, seed: int = 2, weights: np.ndarray | None = None) -> Predictions:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(classes), n)
    logits = rng.normal(size=(n, len(classes))) + 1.5 * np.eye(len(classes))[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Predictions(probs, labels, rng.uniform(20, 300, n), classes, "toy", weights=weights)


def _repeated(pred: Predictions, k: np.ndarray) -> Predictions:
    idx = np.repeat(np.arange(len(pred.labels)), k)
    return Predictions(pred.probs[idx], pred.labels[idx], pred.pt[idx], pred.classes, pred.name)


@pytest.mark.parametrize(
    ("classes", "task"),
    [(["qcd", "top"], "binary"), (["light", "c", "b"], "flavour"), (["qcd", "hbb", "hcc", "wqq"], "multiclass")],
)
def test_the_task_follows_the_classes(classes: list[str], task: str) -> None:
    assert get_task(None, classes).name == task
    m = compute_metrics(_pred(classes))
    assert task_of_metrics(m).name == task
    assert ("auc" in m) == (task == "binary") and ("flavour" in m) == (task == "flavour")


def test_unknown_or_mismatched_task_is_one_clear_error() -> None:
    with pytest.raises(UserError, match="no evaluation is registered for task 'unfolding'"):
        get_task("unfolding", ["a", "b"])
    with pytest.raises(UserError, match="cannot evaluate a dataset with classes"):
        get_task("flavour", ["qcd", "top"])
    assert set(TASKS) >= {"binary", "multiclass", "flavour"}


@pytest.mark.parametrize("classes", [["qcd", "top"], ["light", "c", "b"], ["qcd", "hbb", "hcc", "wqq"]])
def test_integer_weights_equal_repeated_jets(classes: list[str]) -> None:
    k = np.random.default_rng(9).integers(1, 4, 600)
    weighted = compute_metrics(_pred(classes, weights=k.astype(float)))
    repeated = compute_metrics(_repeated(_pred(classes), k))
    assert weighted["accuracy"] == pytest.approx(repeated["accuracy"], rel=1e-12)
    if "auc" in repeated:
        assert weighted["auc"] == pytest.approx(repeated["auc"], rel=1e-12)
        for eff in ("0.3", "0.5", "0.7"):
            assert weighted["rejection"][eff]["rejection"] == pytest.approx(repeated["rejection"][eff]["rejection"])
        # the errors use the effective count, smaller than the repeated jets' count: larger errors
        assert weighted["auc_error"] > repeated["auc_error"]
    else:
        assert weighted["auc_one_vs_rest"] == pytest.approx(repeated["auc_one_vs_rest"], rel=1e-12)
        assert np.allclose(weighted["confusion_matrix"], repeated["confusion_matrix"])
    if "flavour" in repeated:
        for w_row, r_row in zip(weighted["flavour"]["b_tagging"], repeated["flavour"]["b_tagging"], strict=True):
            assert w_row["light"]["rejection"] == pytest.approx(r_row["light"]["rejection"])


def test_weights_change_the_numbers() -> None:
    """Down-weighting the misclassified jets must raise the accuracy: the weights are really used."""
    pred = _pred(["qcd", "top"])
    wrong = pred.probs.argmax(1) != pred.labels
    pred.weights = np.where(wrong, 0.1, 1.0)
    assert compute_metrics(pred)["accuracy"] > compute_metrics(_pred(["qcd", "top"]))["accuracy"] + 0.05
