"""Reading a run directory: its config, preprocessing and model card, the fitted model through its kind, and the
recipe (training config and preprocessing) that a client needs to prepare inputs exactly as in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ai4hep.data.cards import task_of
from ai4hep.data.inspect import dataset_files
from ai4hep.data.loader import InputSpec, JetStream, Normalisation, file_info
from ai4hep.errors import UserError
from ai4hep.models import get_model
from ai4hep.run.config import load_config
from ai4hep.run.layout import CARD, CONFIG, PREPROCESSING, is_run, read_json


def recipe(run: Path) -> tuple[str, dict]:
    """The training config (YAML text) and preprocessing (dict) a run's model expects its inputs prepared with."""
    run = Path(run)
    if not is_run(run):
        raise UserError(f"{run} is not an ai4hep run directory (no {CONFIG} / {PREPROCESSING})")
    return (run / CONFIG).read_text(), read_json(run / PREPROCESSING)


class TrainedRun:
    """A finished run directory loaded for inference: config, preprocessing, card and the fitted model."""

    def __init__(self, run: Path) -> None:
        self.path = Path(run)
        if not is_run(self.path):
            raise UserError(f"{run} is not an ai4hep run directory (no {CONFIG} / {PREPROCESSING}); train one first")
        if not (self.path / CARD).exists():
            raise UserError(f"{run} has not finished training (no {CARD}); run 'ai4hep train' again to resume")
        self.cfg = load_config(self.path / CONFIG)
        self.card = read_json(self.path / CARD)
        self.pre = read_json(self.path / PREPROCESSING)
        self.entry = get_model(self.cfg.model.name)
        self.kind = self.entry.adapter
        self.classes: list[str] = self.pre["classes"]
        self.name = self.path.name
        self.params = self.entry.parse_params(self.cfg.model.params)
        self.spec = InputSpec(self.cfg.data, extras=self.entry.extras, targets=self.entry.targets(self.params))
        self.norm = Normalisation.from_dict(self.pre["normalisation"])
        self.model = self.kind.load(self.path, self.entry.cls, self.params, self.pre)

    @property
    def task(self) -> str:
        """What the run does (binary, multiclass, flavour, ...): recorded in its card, else from its dataset's."""
        return self.card.get("task") or task_of(self.card["dataset"]["card"])

    def test_files(self) -> list[Path]:
        """The run's own test split (the shards it never trained or validated on)."""
        files = [Path(s["file"]) for s in self.card["dataset"]["shards"]["test"]]
        if not files:
            raise UserError(f"{self.path} was trained without a test split; pass --data PATHS")
        return files

    def files(self, data: list[Path] | None = None) -> list[Path]:
        """The shards of DATA (folders or files) when given, else the run's own test split."""
        return [f for p in data for f in dataset_files(Path(p))] if data else self.test_files()

    def check_data(self, files: list[Path]) -> list[str]:
        """Refuse shards of another dataset than the run's (another card name, or other classes: the labels would
        mean other things); returns a warning per other card version of the run's dataset (evaluated: a robustness
        check, but its numbers are not the run's own)."""
        trained = self.card["dataset"]["card"]
        versions: dict[object, int] = {}
        for f in files:
            card = file_info(f, self.cfg.data.objects).card
            classes = list(card.get("classes", []))
            if card.get("name") != trained["name"] or classes != list(self.classes):
                raise UserError(
                    f"{f} holds dataset '{card.get('name')}' (classes {', '.join(map(str, classes))}), but {self.path} "
                    f"was trained on dataset '{trained['name']}' (classes {', '.join(self.classes)}); pass shards of "
                    f"'{trained['name']}' with --data"
                )
            if card.get("version") != trained.get("version"):
                versions[card.get("version")] = versions.get(card.get("version"), 0) + 1
        return [
            f"{n} shard(s) of the data are card version {v} of '{trained['name']}', but {self.path} was trained on "
            f"card version {trained.get('version')}; the metrics are not comparable with the run's own"
            for v, n in versions.items()
        ]

    def stream(self, files: list[Path]) -> JetStream:
        return JetStream(files, self.spec, len(self.classes), self.norm)

    def outputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the model says about one batch: class probabilities ("probs"), then each auxiliary output."""
        return self.kind.predict(self.model, batch)

    def probabilities(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.outputs(batch)["probs"]

    def object_axes(self) -> dict[str, tuple[int, ...]]:
        return self.kind.object_axes(self.model)
