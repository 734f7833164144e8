"""A benchmark suite: datasets x model configs x budgets x seeds, in one YAML file (see suites/standard.yaml).

    name: standard
    seeds: [1, 2]
    budgets:
      small: {jets: 600, shard_size: 100, epochs: 2}
    tasks:
      - dataset: top
        configs: [top_bdt, top_pfn]

A config is a training config by name (`configs/NAME.yaml`, looked up beside the suite's folder or in the working
directory) or by path. Everything is checked before any work starts: unknown datasets, configs and models are one
error line that lists the valid names.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai4hep.data.cards import CARDS
from ai4hep.errors import UserError
from ai4hep.run.config import TrainConfig, load_config


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jets: int = Field(gt=0, description="jets generated for the dataset (split by shard into train/val/test)")
    shard_size: int = Field(gt=0)
    epochs: int = Field(gt=0, description="max_epochs of every network (early stopping still applies)")
    seeds: list[int] | None = Field(None, description="overrides the suite's seeds for this budget")


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    configs: list[str]


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    data_seed: int = 1
    seeds: list[int] = [1]
    budgets: dict[str, Budget]
    tasks: list[Task]

    def seeds_for(self, budget: str) -> list[int]:
        return self.budgets[budget].seeds or self.seeds


def resolve_config(name: str, suite_path: Path) -> Path:
    """A config path, or a name looked up as configs/NAME.yaml beside the suite's folder, then in the working dir."""
    candidates = [Path(name), suite_path.parent / name]
    if not name.endswith((".yaml", ".yml")):
        candidates += [suite_path.parent.parent / "configs" / f"{name}.yaml", Path("configs") / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"{suite_path}: config '{name}' not found (looked for {', '.join(str(c) for c in candidates)})")


def load_suite(path: Path) -> tuple[Suite, dict[str, TrainConfig], dict[str, Path]]:
    """The validated suite, its configs by name (each loaded and checked), and their files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such suite file")
    try:
        raw = yaml.safe_load(path.read_text())
        suite = Suite(**(raw or {}))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise UserError(f"{path}: unknown key '{where}'") from None
        raise UserError(f"{path}: {where}: {err['msg']}") from None
    if not suite.budgets:
        raise UserError(f"{path}: the suite has no budgets; add e.g. budgets: {{small: {{jets: 600, ...}}}}")
    configs: dict[str, TrainConfig] = {}
    files: dict[str, Path] = {}
    for task in suite.tasks:
        if task.dataset not in CARDS:
            raise UserError(f"{path}: unknown dataset '{task.dataset}'; valid datasets: {', '.join(CARDS)}")
        for name in task.configs:
            files[name] = resolve_config(name, path)
            configs[name] = load_config(files[name])  # unknown models and keys fail here, naming the valid ones
    return suite, configs, files
