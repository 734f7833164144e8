"""The layout of a run directory, in one place. Training writes it (ai4hep.run.writer); evaluation, export, serving
and benchmarks read it (ai4hep.run.reader). Every file is written whole (temp file, then rename); metadata is JSON or
YAML, weights are tensors only: nothing in a run directory is executed when it is read.

    config.yaml          the validated config (with --data overrides applied)
    preprocessing.json   variables, normalisation, class weights, classes
    model_card.json      what a reader needs to trust and reproduce the run (dataset card, shards and hashes, task,
                         environment, training numbers); written last, so its presence means "complete"
    <the kind's files>   checkpoints/best.ckpt and last.ckpt (networks), model.txt (BDT), templates.json (templates)
    logs/                CSV metrics per epoch (TensorBoard / MLflow when asked and installed)
    eval/                metrics.json, predictions.h5, plots (ai4hep evaluate)
    export/              model.onnx (ai4hep export onnx)
    fastml/<precision>/  firmware projects and validation.json (ai4hep fastml convert)
"""

from __future__ import annotations

import json
from pathlib import Path

from ai4hep.atomic import atomic_path
from ai4hep.errors import UserError

CONFIG = "config.yaml"
PREPROCESSING = "preprocessing.json"
CARD = "model_card.json"
LOGS = "logs"
EVAL = "eval"
EXPORT = "export"
FASTML = "fastml"


def write_json_atomic(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str))


def read_json(path: Path) -> dict:
    """A run's JSON file, or one line saying which file is broken."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is unreadable or not JSON ({exc.__class__.__name__}); retrain the run") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} does not hold a JSON object; retrain the run")
    return value


def is_run(path: Path) -> bool:
    """Whether `path` holds a run directory's config and preprocessing (finished or not)."""
    return (Path(path) / CONFIG).is_file() and (Path(path) / PREPROCESSING).is_file()
