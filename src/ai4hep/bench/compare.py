"""`ai4hep bench compare OLD NEW`: what changed between two sets of records (say, before and after a PyTorch or
onnxruntime upgrade).

Cells are matched on (task, config, budget), newest record of each. A metric change is flagged when
|new - old| > k * sqrt(s_old^2 + s_new^2), where s = sqrt(std^2 / n_seeds + error^2): the seed spread of the mean
plus the per-seed statistical error (binomial / Hanley-McNeil). The statistical part is counted in full although both
sides usually share the test jets, which makes the check conservative: it flags real changes, not noise.

Then every OLD record's stored ONNX model is re-run under the current environment on the record's stored test
inputs, and its outputs are compared with the ones recorded when it was made.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ai4hep.bench.record import Record, Spread

ONNX_TOLERANCE = 1e-4


def _sigma(s: Spread, n: int) -> float:
    return math.sqrt((s.std or 0.0) ** 2 / max(n, 1) + (s.error or 0.0) ** 2)


def _cell(r: Record) -> tuple[str, str, str]:
    return r.task, r.config_name, r.budget


def metric_changes(old: list[Record], new: list[Record], k: float = 2.0) -> list[dict]:
    """One row per (cell, metric) present on both sides."""
    before = {_cell(r): r for r in old}
    rows = []
    for r in new:
        o = before.get(_cell(r))
        if o is None:
            continue
        for name, s_new in r.metrics.items():
            s_old = o.metrics.get(name)
            if s_old is None or s_old.mean is None or s_new.mean is None:
                continue
            delta = s_new.mean - s_old.mean
            sigma = math.hypot(_sigma(s_old, len(o.seeds)), _sigma(s_new, len(r.seeds)))
            rows.append(
                {
                    "task": r.task,
                    "config": r.config_name,
                    "budget": r.budget,
                    "metric": name,
                    "old": s_old.mean,
                    "new": s_new.mean,
                    "delta": delta,
                    "sigma": sigma,
                    "flagged": abs(delta) > k * sigma,
                    "old_record": o.id,
                    "new_record": r.id,
                }
            )
    return rows


def rerun_onnx(record: Record) -> dict:
    """Max |output now - output recorded| per ONNX output of a record, under the current onnxruntime."""
    folder = Path(record.artifacts)
    model = folder / "model.onnx"
    if not model.is_file():
        error = folder / "onnx_error.txt"
        why = f" (export failed: {error.read_text().strip()})" if error.is_file() else ""
        return {"record": record.id, "status": "no ONNX model stored" + why}
    import onnxruntime as ort

    inputs = dict(np.load(folder / "test_inputs.npz"))
    reference = dict(np.load(folder / "reference_outputs.npz"))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    got = session.run(list(reference), inputs)
    diffs = {name: float(np.abs(a - reference[name]).max()) for name, a in zip(reference, got, strict=True)}
    worst = max(diffs.values()) if diffs else 0.0
    return {
        "record": record.id,
        "status": "ok" if worst <= ONNX_TOLERANCE else "changed",
        "max_abs_diff": diffs,
        "onnxruntime": ort.__version__,
        "recorded_with": record.environment.get("packages", {}).get("onnxruntime"),
    }


def compare(old: list[Record], new: list[Record], k: float = 2.0) -> dict:
    rows = metric_changes(old, new, k)
    reruns = [
        {"task": r.task, "config": r.config_name, "budget": r.budget, **rerun_onnx(r)} for r in old if r.artifacts
    ]
    return {
        "k": k,
        "metrics": rows,
        "onnx": reruns,
        "flagged": [r for r in rows if r["flagged"]],
        "onnx_changed": [r for r in reruns if r["status"] == "changed"],
    }
