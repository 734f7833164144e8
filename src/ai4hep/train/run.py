"""`ai4hep train CONFIG`: a run directory with config, preprocessing, atomic checkpoints, logs and a model card.

Layout of a run directory:
    config.yaml          the validated config (with --data overrides applied)
    preprocessing.json   variables, normalisation, class weights, classes, dataset card and shard hashes
    checkpoints/         last.ckpt and best.ckpt (torch models), written by rename
    model.txt            the trained trees (BDT)
    templates.json       the per-flavour track templates (ip3d)
    logs/                CSV metrics per epoch (TensorBoard / MLflow when asked and installed)
    model_card.json      what a reader needs to trust and reproduce the run
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

from ai4hep.atomic import atomic_path
from ai4hep.data.loader import (
    InputSpec,
    JetStream,
    Normalisation,
    Splits,
    balanced_weights,
    compute_normalisation,
    file_info,
    label_counts,
    split_files,
)
from ai4hep.errors import UserError
from ai4hep.models import get_model
from ai4hep.train.card import environment, write_json_atomic
from ai4hep.train.config import TrainConfig, load_config, parse_config

PREPROCESSING = "preprocessing.json"
CARD = "model_card.json"
TEMPLATES = "templates.json"


def _dataset_meta(splits: Splits, objects: str) -> dict:
    per_split = {
        split: [file_info(p, objects) for p in files]
        for split, files in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    infos = [i for split in per_split.values() for i in split]
    names = {i.card["name"] for i in infos}
    classes = {tuple(i.card["classes"]) for i in infos}
    if len(names) > 1 or len(classes) > 1:
        raise UserError(f"the data mixes datasets {sorted(names)}; train on shards of one dataset")
    card = infos[0].card
    return {
        "card": card,
        "classes": list(card["classes"]),
        "shards": {
            split: [{"file": str(i.path), "content_hash": i.content_hash} for i in split_infos]
            for split, split_infos in per_split.items()
        },
    }


def resolve_config(config: Path, data: list[str] | None) -> TrainConfig:
    cfg = load_config(config)
    if data:
        raw = cfg.model_dump()
        raw["data"].update({"paths": [str(p) for p in data], "train": None, "val": None, "test": None})
        cfg = parse_config(raw, str(config))
    return cfg


def _prepare_dir(out: Path, cfg: TrainConfig) -> None:
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    saved = out / "config.yaml"
    if saved.exists():
        if saved.read_text() != text:
            raise UserError(
                f"{out} holds a run with a different config; pick a new --out, or delete {out} to start over"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not an ai4hep run directory; pick a new --out")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(saved) as tmp:
        tmp.write_text(text)


def train(config: Path, out: Path, data: list[str] | None = None, progress: bool = True) -> dict:
    """Train (or resume) the run in `out`; returns the model card."""
    cfg = resolve_config(config, data)
    out = Path(out)
    _prepare_dir(out, cfg)
    if (out / CARD).exists():
        card = json.loads((out / CARD).read_text())
        if card.get("status") == "complete":
            return card
    entry = get_model(cfg.model.name)
    splits = split_files(cfg.data)
    meta = _dataset_meta(splits, cfg.data.objects)
    n_classes = len(meta["classes"])
    spec = InputSpec(cfg.data, extras=entry.extras, targets=entry.targets(entry.parse_params(cfg.model.params)))
    pre = _preprocessing(out, cfg, spec, splits, meta, n_classes)
    norm = Normalisation.from_dict(pre["normalisation"])
    weights = np.asarray(pre["class_weights"])
    threads = cfg.trainer.threads or os.cpu_count() or 1
    start = time.perf_counter()
    if entry.kind == "bdt":
        result = _train_bdt(out, cfg, spec, splits, n_classes, norm, weights, threads)
    elif entry.kind == "templates":
        result = _train_templates(out, cfg, spec, splits, n_classes, norm, weights)
    else:
        result = _train_torch(out, cfg, spec, splits, n_classes, norm, weights, threads, progress)
    card = {
        "status": "complete",
        "model": cfg.model.name,
        "description": entry.description,
        "dataset": {"name": meta["card"]["name"], "card": meta["card"], "shards": meta["shards"]},
        "classes": meta["classes"],
        "config": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "environment": environment(),
        "training_time_s": round(time.perf_counter() - start, 2),
        **result,
    }
    write_json_atomic(out / CARD, card)
    return card


def _preprocessing(out: Path, cfg: TrainConfig, spec: InputSpec, splits: Splits, meta: dict, n_classes: int) -> dict:
    """Computed once per run and reused on resume, so a resumed run normalises exactly as it began."""
    path = out / PREPROCESSING
    if path.exists():
        return json.loads(path.read_text())
    counts = label_counts(splits.train, cfg.data.label, n_classes)
    weights = balanced_weights(counts) if cfg.data.class_weights == "balanced" else np.ones(n_classes)
    stream = JetStream(splits.train, spec, n_classes)
    norm = compute_normalisation(stream, cfg.data.norm_jets)
    pre = {
        "jet_features": [v.label for v in spec.jet_vars],
        "object_features": [v.label for v in spec.object_vars],
        "objects": cfg.data.objects,
        "max_objects": cfg.data.max_objects,
        "extras": list(spec.extras),
        "classes": meta["classes"],
        "train_counts": counts.tolist(),
        "class_weights": weights.tolist(),
        "normalisation": norm.to_dict(),
    }
    write_json_atomic(path, pre)
    return pre


def _collect(stream: JetStream) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ws = [], [], []
    for batch in stream:
        xs.append(batch["jet"])
        ys.append(batch["label"])
        ws.append(batch["weight"])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def _train_bdt(out, cfg, spec, splits, n_classes, norm, weights, threads) -> dict:
    from ai4hep.metrics.binary import accuracy, auc
    from ai4hep.models.bdt import BDT

    entry = get_model("bdt")
    params = entry.parse_params(cfg.model.params)
    train_stream = JetStream(splits.train, spec, n_classes, norm, weights)
    val_stream = JetStream(splits.val, spec, n_classes, norm, weights)
    x, y, w = _collect(train_stream)
    xv, yv, _ = _collect(val_stream)
    bdt = BDT(params, n_classes, cfg.seed, threads)
    start = time.perf_counter()
    info = bdt.fit(x, y, w, xv, yv)
    seconds = time.perf_counter() - start
    bdt.save(out / "model.txt")
    probs = bdt.predict_proba(xv)
    metrics = {"val_accuracy": accuracy(probs, yv)}
    if n_classes == 2:
        metrics["val_auc"] = auc(probs[:, 1], yv == 1)
    return {
        "parameters": {"trees": bdt.n_trees(), "best_iteration": info["best_iteration"]},
        "parameter_count": bdt.n_trees(),
        "ops_per_jet": bdt.ops_per_jet(),
        "ops_note": "BDT: comparisons per jet (one per tree level), not FLOPs",
        "train_jets": len(y),
        "train_jets_per_s": round(len(y) / seconds, 1),  # jets through the whole fit
        "metrics": metrics,
    }


def _train_templates(out, cfg, spec, splits, n_classes, norm, weights) -> dict:
    from ai4hep.metrics.binary import accuracy
    from ai4hep.models.ip3d import IP3D

    entry = get_model(cfg.model.name)
    model = IP3D(entry.parse_params(cfg.model.params), n_classes)
    start = time.perf_counter()
    info = model.fit(JetStream(splits.train, spec, n_classes, norm, weights))
    seconds = time.perf_counter() - start
    model.save(out / TEMPLATES)
    probs, labels = [], []
    for batch in JetStream(splits.val, spec, n_classes, norm, weights):
        probs.append(model.predict_proba(batch["objects"], batch["mask"]))
        labels.append(batch["label"])
    return {
        "parameters": {"bins": [len(e) + 1 for e in model.edges], **info},
        "parameter_count": model.parameter_count,
        "train_jets": info["train_jets"],
        "train_jets_per_s": round(info["train_jets"] / seconds, 1),
        "metrics": {"val_accuracy": accuracy(np.concatenate(probs), np.concatenate(labels))},
    }


def _loggers(out: Path, names: list[str]) -> list:
    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger

    loggers = []
    for name in names:
        if name == "csv":
            loggers.append(CSVLogger(str(out), name="logs"))  # logs/version_N: one per (re)start
        elif name == "tensorboard":
            if not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")):
                raise UserError("trainer.loggers asks for tensorboard, which is not installed; pip install tensorboard")
            loggers.append(TensorBoardLogger(str(out), name="tensorboard", version=""))
        elif name == "mlflow":
            if not importlib.util.find_spec("mlflow"):
                raise UserError("trainer.loggers asks for mlflow, which is not installed; pip install mlflow")
            loggers.append(MLFlowLogger(experiment_name="ai4hep", tracking_uri=f"file:{out / 'mlruns'}"))
    return loggers


def build_torch_model(cfg: TrainConfig, pre: dict):
    entry = get_model(cfg.model.name)
    params = entry.parse_params(cfg.model.params)
    return entry.cls(len(pre["jet_features"]), len(pre["object_features"]), len(pre["classes"]), params)


def _train_torch(out, cfg, spec, splits, n_classes, norm, weights, threads, progress) -> dict:
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    import lightning.pytorch as pl
    import torch

    from ai4hep.train.callbacks import AtomicCheckpoint, EpochSeed, Throughput
    from ai4hep.train.card import flops_per_jet
    from ai4hep.train.module import TaggerModule, loader

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    pre = json.loads((out / PREPROCESSING).read_text())
    model = build_torch_model(cfg, pre)
    module = TaggerModule(model, cfg.trainer.lr, cfg.trainer.weight_decay, cfg.trainer.max_epochs)
    train_stream = JetStream(splits.train, spec, n_classes, norm, weights, shuffle=True, seed=cfg.seed)
    val_stream = JetStream(splits.val, spec, n_classes, norm, weights)
    throughput = Throughput()
    ckpt_dir = out / "checkpoints"
    checkpoints = AtomicCheckpoint(ckpt_dir)
    max_time = {"minutes": cfg.trainer.max_time_minutes} if cfg.trainer.max_time_minutes else None
    trainer = pl.Trainer(
        max_epochs=cfg.trainer.max_epochs,
        max_steps=cfg.trainer.max_steps,
        max_time=max_time,
        accelerator="cpu" if cfg.trainer.accelerator == "cpu" else cfg.trainer.accelerator,
        devices=1,
        logger=_loggers(out, cfg.trainer.loggers),
        callbacks=[
            pl.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.trainer.patience, check_on_train_epoch_end=False
            ),
            checkpoints,
            EpochSeed(cfg.seed),
            throughput,
        ],
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(10, len(train_stream))),
        deterministic=True,
        gradient_clip_val=cfg.trainer.grad_clip or None,
    )
    last = ckpt_dir / "last.ckpt"
    resume = str(last) if last.exists() else None
    if resume:
        check_checkpoint(last)
    trainer.fit(module, loader(train_stream, lambda: trainer.current_epoch), loader(val_stream), ckpt_path=resume)
    sample = next(iter(loader(val_stream)))
    metrics = {k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
    return {
        "parameter_count": int(sum(p.numel() for p in model.parameters())),
        "flops_per_jet": flops_per_jet(model, sample),
        "epochs": int(trainer.current_epoch),
        "best_val_loss": float(checkpoints.best),
        "train_jets_per_s": round(throughput.jets_per_s, 1),
        "device": str(next(model.parameters()).device),
        "threads": threads,
        "chunk_jets": train_stream.chunk_jets,
        "metrics": metrics,
    }


def check_checkpoint(path: Path) -> dict:
    """Load a checkpoint or fail with one line; a damaged file is reported, never deleted."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds on damaged files
        raise UserError(
            f"{path} is corrupt or truncated ({exc.__class__.__name__}); move it away to restart from the "
            "other checkpoint or from scratch"
        ) from None
