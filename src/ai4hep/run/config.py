"""A run's config (config.yaml): the YAML training config, validated by pydantic; unknown keys are errors that list
the valid names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai4hep.data.loader import DataConfig
from ai4hep.errors import UserError
from ai4hep.models import get_model
from ai4hep.models.kinds import TrainerConfig


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 1
    data: DataConfig
    model: ModelConfig
    trainer: TrainerConfig = TrainerConfig()


def _where(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"])


def parse_config(raw: dict, source: str) -> TrainConfig:
    try:
        cfg = TrainConfig(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _where(err)
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            model: type[BaseModel] = TrainConfig
            for key in parent:
                model = model.model_fields[str(key)].annotation  # type: ignore[assignment]
            valid = ", ".join(model.model_fields)
            raise UserError(f"{source}: unknown config key '{where}'; valid keys here: {valid}") from None
        raise UserError(f"{source}: {where}: {err['msg']}") from None
    entry = get_model(cfg.model.name)
    entry.parse_params(cfg.model.params)
    if "jet" in entry.inputs and not cfg.data.jet_features:
        raise UserError(f"{source}: model '{entry.name}' reads high-level features; set data.jet_features")
    if "objects" in entry.inputs and not cfg.data.object_features:
        raise UserError(f"{source}: model '{entry.name}' reads per-object inputs; set data.object_features")
    return cfg


def load_config(path: Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a mapping with keys seed, data, model, trainer")
    return parse_config(raw, str(path))


def resolve_config(config: Path, data: list[str] | None) -> TrainConfig:
    """The config file, with --data replacing its data paths (and its explicit splits) when given."""
    cfg = load_config(config)
    if data:
        raw = cfg.model_dump()
        raw["data"].update({"paths": [str(p) for p in data], "train": None, "val": None, "test": None})
        cfg = parse_config(raw, str(config))
    return cfg
