"""A benchmark suite: datasets x model configs x budgets x seeds, in one YAML file (see suites/standard.yaml).

    name: standard
    seeds: [1, 2]
    budgets:
      small: {jets: 600, shard_size: 100, steps: 300, batch_size: 32}
      full: {jets: 200000, shard_size: 10000, epochs: 30}
    tasks:
      - dataset: top
        configs: [top_bdt, top_pfn]

A config is a training config by name (`configs/NAME.yaml`, looked up beside the suite's folder or in the working
directory) or by path. Everything is checked before any work starts: unknown datasets, configs, models and keys are
one error line that lists the valid names.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ai4hep.data.cards import CARDS
from ai4hep.errors import UserError
from ai4hep.run.config import TrainConfig, load_config


class Budget(BaseModel):
    """How much every cell gets: the dataset size, and how long each network trains, in epochs or optimizer steps.

    `steps` is the budget for tiny datasets: every network takes that many optimizer steps (trainer.max_steps), with
    max_epochs raised to ceil(steps / steps per epoch) so the steps, not the epochs, end training and the cosine
    learning-rate decay spans them. `epochs` alone is the classic budget (trainer.max_epochs). Early stopping on the
    validation loss applies to both. `threads` pins every cell's CPU threads: on a small or shared machine one
    thread per cell avoids torch's threads waiting on each other (ParT trained 8x faster on 1 thread than on 2)."""

    model_config = ConfigDict(extra="forbid")
    jets: int = Field(gt=0, description="jets generated for the dataset (split by shard into train/val/test)")
    shard_size: int = Field(gt=0)
    epochs: int | None = Field(None, gt=0, description="max_epochs of every network (early stopping still applies)")
    steps: int | None = Field(None, gt=0, description="optimizer steps of every network (trainer.max_steps)")
    batch_size: int | None = Field(None, gt=0, description="every network's data.batch_size instead of its config's")
    threads: int | None = Field(None, ge=0, description="every cell's trainer.threads (torch, LightGBM; 0: all cores)")
    seeds: list[int] | None = Field(None, description="overrides the suite's seeds for this budget")

    @model_validator(mode="after")
    def _has_a_length(self) -> Budget:
        if self.epochs is None and self.steps is None:
            raise ValueError("give epochs or steps (how long every network trains)")
        return self


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


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model whose keys sit at `loc` in a suite file: budgets.NAME is a Budget, tasks.N a Task, else the Suite."""
    if len(loc) == 2 and loc[0] in ("budgets", "tasks"):
        return Budget if loc[0] == "budgets" else Task
    return Suite


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
            valid = ", ".join(_model_at(err["loc"][:-1]).model_fields)
            raise UserError(f"{path}: unknown key '{where}'; valid keys here: {valid}") from None
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
