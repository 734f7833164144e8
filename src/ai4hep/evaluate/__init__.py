"""`ai4hep evaluate RUN --data PATHS`: predictions, metrics.json and plots for a trained run, computed and drawn by
the run's task (ai4hep.evaluate.tasks: binary, multi-class and flavour tagging today)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ai4hep.atomic import check_target, make_dir
from ai4hep.errors import UserError
from ai4hep.evaluate.predictions import Predictions, predict, write_predictions
from ai4hep.evaluate.tasks import TASKS, EvalOptions, aux_metrics, get_task, task_of_metrics
from ai4hep.metrics.flavour import F_B, F_C
from ai4hep.run.layout import EVAL, write_json_atomic
from ai4hep.run.reader import TrainedRun


def compute_metrics(pred: Predictions, background: int = 0, f_c: float = F_C, f_b: float = F_B) -> dict:
    """The metrics of `pred`'s task (binary, multiclass, flavour, ...)."""
    return get_task(pred.task, pred.classes).metrics(pred, EvalOptions(background, f_c, f_b))


def _clean(obj):
    """JSON-safe: non-finite floats become null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj


def evaluate(
    run: Path,
    data: list[Path] | None,
    out: Path | None = None,
    reference: Path | None = None,
    f_c: float = F_C,
    f_b: float = F_B,
) -> dict:
    """Predict on every shard of `data` (default: the run's test split), write metrics.json, predictions.h5 and
    plots; returns the metrics. f_c and f_b are the flavour discriminants' fractions (b/c/light taggers only).

    Shards of another dataset (name or classes other than the run's) are refused; shards of another card version of
    the run's dataset are evaluated, with the difference in metrics["data_warnings"] (TrainedRun.check_data)."""
    tagger = TrainedRun(run)
    task = get_task(tagger.task, tagger.classes)
    options = EvalOptions(f_c=f_c, f_b=f_b)
    files = tagger.files(data)
    out = Path(out) if out else Path(run) / EVAL
    check_target(out, "--out")
    notes = tagger.check_data(files) if data else []
    start = time.perf_counter()
    pred = predict(tagger, files)
    seconds = time.perf_counter() - start
    metrics = task.metrics(pred, options)
    metrics["task"] = task.name
    metrics["data"] = [str(f) for f in files]
    if notes:
        metrics["data_warnings"] = notes
    metrics["inference_jets_per_s"] = len(pred.labels) / max(seconds, 1e-9)  # reading and preprocessing included
    ref_pred = None
    if reference is not None:
        ref = TrainedRun(reference)
        if ref.classes != tagger.classes:
            raise UserError(f"reference run {reference} has classes {ref.classes}, not {tagger.classes}")
        ref_pred = predict(ref, files)
        metrics["reference"] = task.metrics(ref_pred, options)
    make_dir(out)
    metrics["plots"] = [str(p) for p in task.plots(pred, ref_pred, metrics, out, options)]
    write_predictions(out / "predictions.h5", pred)
    metrics = _clean(metrics)
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def headline(m: dict) -> str:
    """One line for the terminal."""
    return task_of_metrics(m).headline(m)


__all__ = [
    "TASKS",
    "EvalOptions",
    "Predictions",
    "TrainedRun",
    "aux_metrics",
    "compute_metrics",
    "evaluate",
    "headline",
    "predict",
    "write_predictions",
]
