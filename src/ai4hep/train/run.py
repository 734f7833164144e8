"""`ai4hep train CONFIG`: fit the config's model through its kind and write the run directory (ai4hep.run.layout
describes it): config, preprocessing, the kind's files, logs and, last, the model card.

Nothing is written before the inputs are checked (the config, the model's params, every shard's fields, the training
split's values), and a new run that fails before the kind saved anything resumable is removed again: bad data leave
no run folder that would refuse the corrected rerun ("holds a run with a different config")."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from ai4hep.data.cards import task_of
from ai4hep.data.loader import InputSpec, Normalisation, file_info, split_files
from ai4hep.errors import UserError
from ai4hep.models import get_model
from ai4hep.models.kinds import FitContext
from ai4hep.models.kinds.base import FIT_RESULT_KEYS
from ai4hep.run.card import environment
from ai4hep.run.config import resolve_config
from ai4hep.run.writer import check_dir, dataset_meta, finished_card, prepare_dir, preprocessing, write_card


def train(config: Path, out: Path, data: list[str] | None = None, progress: bool = True) -> dict:
    """Train (or resume) the run in `out`; returns the model card."""
    cfg = resolve_config(config, data)
    out = Path(out)
    resuming = check_dir(out, cfg)
    card = finished_card(out) if resuming else None
    if card is not None:
        return card
    entry = get_model(cfg.model.name)
    params = entry.parse_params(cfg.model.params)
    splits = split_files(cfg.data)
    meta = dataset_meta(splits, cfg.data.objects)
    n_classes = len(meta["classes"])
    spec = InputSpec(cfg.data, extras=entry.extras, targets=entry.targets(params))
    for path in (*splits.train, *splits.val, *splits.test):  # every shard has what the config reads
        spec.check(file_info(path, cfg.data.objects))
    pre = preprocessing(out, cfg, spec, splits, meta, n_classes)
    new = None if resuming else _first_new(out)
    try:
        prepare_dir(out, cfg, pre)
        card = _fit(cfg, out, entry, params, spec, splits, meta, n_classes, pre, progress)
    except Exception:
        if not resuming and not any((out / f).exists() for f in entry.adapter.files):
            _remove_start(out, new)  # a failed start leaves no trace
        raise
    return card


def _first_new(out: Path) -> Path | None:
    """The topmost folder of `out` that does not exist yet (None: `out` exists, empty)."""
    new = None
    while not out.exists():
        new, out = out, out.parent
    return new


def _remove_start(out: Path, new: Path | None) -> None:
    """Remove what a failed start created: the folders it made, or the files it wrote into an empty `out`."""
    if new is not None:
        shutil.rmtree(new, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _fit(cfg, out, entry, params, spec, splits, meta, n_classes, pre, progress) -> dict:
    """Fit through the model's kind (which saves its files into `out`), then write the model card."""
    ctx = FitContext(
        out=out,
        model_cls=entry.cls,
        params=params,
        trainer=cfg.trainer,
        seed=cfg.seed,
        spec=spec,
        splits=splits,
        n_classes=n_classes,
        norm=Normalisation.from_dict(pre["normalisation"]),
        class_weights=np.asarray(pre["class_weights"]),
        threads=cfg.trainer.threads or os.cpu_count() or 1,
        preprocessing=pre,
        progress=progress,
    )
    start = time.perf_counter()
    result = entry.adapter.fit(ctx)
    missing = [k for k in FIT_RESULT_KEYS if k not in result]
    if missing:
        raise UserError(
            f"model kind '{entry.adapter.name}' returned no {', '.join(missing)} from fit(); a kind's fit returns at "
            f"least {', '.join(FIT_RESULT_KEYS)} (see ai4hep.models.kinds.base)"
        )
    card = {
        "status": "complete",
        "model": cfg.model.name,
        "description": entry.description,
        "kind": entry.adapter.name,
        "task": task_of(meta["card"]),
        "dataset": {"name": meta["card"]["name"], "card": meta["card"], "shards": meta["shards"]},
        "classes": meta["classes"],
        "config": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "environment": environment(),
        "training_time_s": round(time.perf_counter() - start, 2),
        **result,
    }
    write_card(out, card)
    return card
