"""Writing a run directory (for `ai4hep train`): the config, the preprocessing computed once and reused on resume,
and the model card, each written whole. A new run directory is created only once its inputs are checked
(check_dir, then preprocessing, then prepare_dir), so bad input leaves no folder that would refuse the corrected
rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from ai4hep.atomic import atomic_path, check_target, make_dir
from ai4hep.data.loader import (
    InputSpec,
    JetStream,
    Splits,
    balanced_weights,
    compute_normalisation,
    file_info,
    label_counts,
)
from ai4hep.errors import UserError
from ai4hep.run.config import TrainConfig
from ai4hep.run.layout import CARD, CONFIG, PREPROCESSING, write_json_atomic


def _config_text(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def check_dir(out: Path, cfg: TrainConfig) -> bool:
    """Whether `out` holds a run of this same config (a resume); writes nothing. Another config, a folder of other
    files, a file, or a place that cannot be written is an error."""
    check_target(out, "--out")
    saved = out / CONFIG
    if saved.exists():
        if saved.read_text() != _config_text(cfg):
            raise UserError(
                f"{out} holds a run with a different config; pick a new --out, or delete {out} to start over"
            )
        return True
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not an ai4hep run directory; pick a new --out")
    return False


def prepare_dir(out: Path, cfg: TrainConfig, pre: dict) -> None:
    """Create the run directory with its config and preprocessing (after check_dir and the inputs' checks); a resumed
    run keeps the files it has."""
    make_dir(out)
    saved = out / CONFIG
    if not saved.exists():
        with atomic_path(saved) as tmp:
            tmp.write_text(_config_text(cfg))
    if not (out / PREPROCESSING).exists():
        write_json_atomic(out / PREPROCESSING, pre)


def finished_card(out: Path) -> dict | None:
    """The model card of a run that finished training, else None."""
    if (out / CARD).exists():
        card = json.loads((out / CARD).read_text())
        if card.get("status") == "complete":
            return card
    return None


def dataset_meta(splits: Splits, objects: str) -> dict:
    """The dataset card, classes, and every shard of each split with its content hash."""
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


def preprocessing(out: Path, cfg: TrainConfig, spec: InputSpec, splits: Splits, meta: dict, n_classes: int) -> dict:
    """Computed once per run (a pass over the training split, which checks its values) and reused on resume, so a
    resumed run normalises exactly as it began. Written by prepare_dir."""
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
    return pre


def write_card(out: Path, card: dict) -> None:
    """The model card, written last: its presence with status "complete" marks a finished run."""
    write_json_atomic(out / CARD, card)
