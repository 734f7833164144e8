"""The model-kind interface: what training, evaluation and export ask of a model, whatever framework fits it.

A kind (torch networks, LightGBM BDTs, histogram templates today) fits a model from a FitContext and writes its files
into the run directory, loads them back, predicts a batch, and writes its ONNX graph. Nothing outside the kind's own
file asks which kind a model is: adding one is a new file (a ModelKind subclass) and, for a built-in kind, one line in
ai4hep.models.kinds; a user's model class may instead name its own kind class in its `kind` attribute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ai4hep.data.loader import InputSpec, JetStream, Normalisation, Splits
from ai4hep.errors import UserError


class TrainerConfig(BaseModel):
    """How a kind fits: the `trainer:` block of a training config (epochs and optimiser settings apply to networks)."""

    model_config = ConfigDict(extra="forbid")
    max_epochs: int = Field(20, gt=0)
    max_steps: int = -1
    max_time_minutes: float | None = Field(None, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(5, gt=0, description="early stopping: epochs without a better validation loss")
    grad_clip: float = Field(1.0, ge=0, description="clip the gradient norm (0: off); deep ParT stalls without it")
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    threads: int = Field(0, ge=0, description="CPU threads for torch / LightGBM; 0 = all cores")
    loggers: list[Literal["csv", "tensorboard", "mlflow"]] = ["csv"]


@dataclass(frozen=True)
class FitContext:
    """Everything a kind needs to fit one run, in one typed value (instead of loose arguments)."""

    out: Path  # the run directory: the kind writes its own files here
    model_cls: type  # the registered model class
    params: BaseModel  # its validated `model.params`
    trainer: TrainerConfig
    seed: int
    spec: InputSpec
    splits: Splits
    n_classes: int
    norm: Normalisation
    class_weights: np.ndarray
    threads: int
    preprocessing: dict  # the run's preprocessing.json (feature lists, classes, normalisation)
    progress: bool = True

    def stream(self, split: Literal["train", "val", "test"], shuffle: bool = False) -> JetStream:
        """Normalised, class-weighted batches of one split (shuffled per epoch with the run's seed when asked)."""
        files = getattr(self.splits, split)
        return JetStream(
            files, self.spec, self.n_classes, self.norm, self.class_weights, shuffle=shuffle, seed=self.seed
        )

    def build(self) -> Any:
        """A fresh model of the run's class, sized from its preprocessing (the networks' and templates' constructor)."""
        pre = self.preprocessing
        return self.model_cls(len(pre["jet_features"]), len(pre["object_features"]), len(pre["classes"]), self.params)


@dataclass(frozen=True)
class OnnxGraph:
    """What a kind's ONNX writer produced: the graph's input and output names, the exporter used, and the original
    model as a function of the inputs (what the file is checked against)."""

    inputs: list[str]
    outputs: list[str]
    exporter: str
    reference: Callable[[dict[str, np.ndarray]], list[np.ndarray]]


# What every kind's fit returns for the model card (besides anything of its own): the size of the fitted model, the
# training throughput in jets per second, and its validation metrics by name.
FIT_RESULT_KEYS = ("parameter_count", "train_jets_per_s", "metrics")


class ModelKind(ABC):
    """One way of fitting, storing and running a model. Subclasses set the class attributes and the methods."""

    name: ClassVar[str]
    framework: ClassVar[str]  # what evaluation runs and the ONNX file is checked against
    trains_in_epochs: ClassVar[bool] = False  # whether trainer.max_epochs applies
    files: ClassVar[tuple[str, ...]] = ()  # the kind's own files in a run directory

    @abstractmethod
    def fit(self, ctx: FitContext) -> dict:
        """Fit on ctx's train split (validating on its val split), save into ctx.out; returns model-card entries,
        at least FIT_RESULT_KEYS."""

    @abstractmethod
    def save(self, model: Any, out: Path) -> None:
        """Write a fitted model's files into the run directory `out`, atomically."""

    @abstractmethod
    def load(self, run: Path, model_cls: type, params: BaseModel, pre: dict) -> Any:
        """The fitted model of run directory `run`, never executing code from its files."""

    @abstractmethod
    def predict(self, model: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs for one batch: class probabilities as "probs" first, then any auxiliary output by name."""

    def object_axes(self, model: Any) -> dict[str, tuple[int, ...]]:
        """Per output, the axes that run over objects (padded back to max_objects when batches are joined)."""
        return {}

    @abstractmethod
    def write_onnx(self, model: Any, sample: dict[str, np.ndarray], path: Path) -> OnnxGraph:
        """Write the model as an ONNX graph at `path` (sample: one real batch, for tracing)."""

    def fastml_route(self, model: Any) -> str | None:
        """The firmware route of `ai4hep fastml` for this model ("hls4ml", "conifer"), or None when it has none."""
        return None


class SingleFileKind(ModelKind):
    """A kind whose fitted model is one file, written and read by the model class's own save(path) and
    load(path, params, n_classes) (the BDT's text model, the templates' JSON)."""

    model_file: ClassVar[str]

    def save(self, model: Any, out: Path) -> None:
        model.save(Path(out) / self.model_file)

    def load(self, run: Path, model_cls: type, params: BaseModel, pre: dict) -> Any:
        path = Path(run) / self.model_file
        try:
            return model_cls.load(path, params, len(pre["classes"]))
        except Exception as exc:
            raise UserError(f"{path} is missing or corrupt ({exc.__class__.__name__}); retrain the run") from None
