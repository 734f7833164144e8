"""Torch networks (mlp, pfn, efn, particlenet, part, dips, gn2 and users' nn.Modules): fitted with Lightning,
stored as Lightning checkpoints (checkpoints/best.ckpt, checkpoints/last.ckpt), exported through torch.onnx.

A network class takes (n_jet_features, n_object_features, n_classes, params), names the batch inputs it reads in
`inputs` and `extras`, and returns logits, or a dict of task outputs with `losses`, `infer` and `object_axes` (the
multi-task taggers). Checkpoints are read with torch.load(weights_only=True): a crafted file is refused, never run.
"""

from __future__ import annotations

import importlib.util
import logging
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from ai4hep.atomic import atomic_path
from ai4hep.errors import UserError
from ai4hep.models.kinds.base import FitContext, ModelKind, OnnxGraph

CHECKPOINTS = "checkpoints"


def model_inputs(model, batch: dict) -> dict:
    """The batch entries a network's forward takes, by name."""
    return {k: batch[k] for k in (*model.inputs, *model.extras)}


def check_checkpoint(path: Path) -> dict:
    """Load a checkpoint as plain tensors and containers, or fail with one line; a damaged or crafted file is
    reported, never deleted and never executed."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on damaged files; the weights-only unpickler names a global
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
        if refused:
            raise UserError(
                f"{path} holds objects other than tensors (it asks for {refused.group(1)}), which ai4hep never loads "
                "(they could run code); use a checkpoint written by 'ai4hep train', or move this one away"
            ) from None
        raise UserError(
            f"{path} is corrupt or truncated ({exc.__class__.__name__}); move it away to restart from the "
            "other checkpoint or from scratch"
        ) from None


def flops_per_jet(model, batch: dict) -> float:
    """Forward FLOPs per jet counted by torch's FlopCounterMode (matmuls, convolutions, attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(**model_inputs(model, batch))
    finally:
        model.train(was_training)
    return float(counter.get_total_flops()) / max(len(batch["label"]), 1)


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


def _wrapper(model):
    import torch

    class Exported(torch.nn.Module):
        """Positional inputs in the model's order, and a tuple of inference outputs (probabilities)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.names = (*model.inputs, *model.extras)

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
            kw = dict(zip(self.names, args, strict=True))
            out = self.model(**kw)
            if isinstance(out, dict):
                return tuple(self.model.infer(out, kw["mask"]).values())
            return (torch.softmax(out, -1),)

    return Exported().eval()


def output_names(model, sample: tuple) -> list[str]:
    import torch

    with torch.no_grad():
        kw = dict(zip((*model.inputs, *model.extras), sample, strict=True))
        out = model(**kw)
    return list(model.infer(out, kw["mask"])) if isinstance(out, dict) else ["probs"]


class TorchKind(ModelKind):
    name = "torch"
    framework = "PyTorch"
    trains_in_epochs = True
    files: ClassVar[tuple[str, ...]] = (f"{CHECKPOINTS}/best.ckpt", f"{CHECKPOINTS}/last.ckpt")

    def fit(self, ctx: FitContext) -> dict:
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined.*")
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
        import lightning.pytorch as pl
        import torch

        from ai4hep.models.kinds.callbacks import AtomicCheckpoint, EpochSeed, Throughput
        from ai4hep.models.kinds.lightning import TaggerModule, loader

        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
        t = ctx.trainer
        torch.set_num_threads(ctx.threads)
        pl.seed_everything(ctx.seed, workers=True, verbose=False)
        model = ctx.build()
        module = TaggerModule(model, t.lr, t.weight_decay, t.max_epochs)
        train_stream = ctx.stream("train", shuffle=True)
        val_stream = ctx.stream("val")
        throughput = Throughput()
        ckpt_dir = ctx.out / CHECKPOINTS
        checkpoints = AtomicCheckpoint(ckpt_dir)
        max_time = {"minutes": t.max_time_minutes} if t.max_time_minutes else None
        trainer = pl.Trainer(
            max_epochs=t.max_epochs,
            max_steps=t.max_steps,
            max_time=max_time,
            accelerator="cpu" if t.accelerator == "cpu" else t.accelerator,
            devices=1,
            logger=_loggers(ctx.out, t.loggers),
            callbacks=[
                pl.callbacks.EarlyStopping(monitor="val_loss", patience=t.patience, check_on_train_epoch_end=False),
                checkpoints,
                EpochSeed(ctx.seed),
                throughput,
            ],
            enable_checkpointing=False,
            enable_progress_bar=ctx.progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, min(10, len(train_stream))),
            deterministic=True,
            gradient_clip_val=t.grad_clip or None,
        )
        last = ckpt_dir / "last.ckpt"
        resume = str(last) if last.exists() else None
        if resume:
            check_checkpoint(last)
        trainer.fit(
            module,
            loader(train_stream, lambda: trainer.current_epoch),
            loader(val_stream),
            ckpt_path=resume,
            weights_only=True,
        )
        sample = next(iter(loader(val_stream)))
        metrics = {k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        return {
            "parameter_count": int(sum(p.numel() for p in model.parameters())),
            "flops_per_jet": flops_per_jet(model, sample),
            "epochs": int(trainer.current_epoch),
            "best_val_loss": float(checkpoints.best),
            "train_jets_per_s": round(throughput.jets_per_s, 1),
            "device": str(next(model.parameters()).device),
            "threads": ctx.threads,
            "chunk_jets": train_stream.chunk_jets,
            "metrics": metrics,
        }

    def save(self, model: Any, out: Path) -> None:
        """A weights-only checkpoint as best.ckpt (the state dict under Lightning's key), for networks fitted by
        other loops; Lightning's own checkpoints are written during `fit`."""
        import torch

        folder = Path(out) / CHECKPOINTS
        folder.mkdir(parents=True, exist_ok=True)
        state = {f"model.{k}": v for k, v in model.state_dict().items()}
        with atomic_path(folder / "best.ckpt") as tmp:
            torch.save({"state_dict": state}, tmp)

    def load(self, run: Path, model_cls: type, params: BaseModel, pre: dict) -> Any:
        ckpt_dir = Path(run) / CHECKPOINTS
        path = ckpt_dir / "best.ckpt" if (ckpt_dir / "best.ckpt").exists() else ckpt_dir / "last.ckpt"
        if not path.exists():
            raise UserError(f"{run} has no checkpoint; run 'ai4hep train' again to resume")
        checkpoint = check_checkpoint(path)
        state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise UserError(f"{path} holds no state_dict; it is not an ai4hep checkpoint, retrain the run")
        model = model_cls(len(pre["jet_features"]), len(pre["object_features"]), len(pre["classes"]), params)
        try:
            model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
        except RuntimeError as exc:
            raise UserError(f"{path} does not fit the run's model ({str(exc).splitlines()[0]})") from None
        model.eval()
        return model

    def predict(self, model: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            out = model(**model_inputs(model, tensors))
            if isinstance(out, dict):  # a multi-task model: every head's inference output
                return {k: v.numpy() for k, v in model.infer(out, tensors["mask"]).items()}
            return {"probs": torch.softmax(out, -1).numpy()}

    def object_axes(self, model: Any) -> dict[str, tuple[int, ...]]:
        return model.object_axes() if hasattr(model, "object_axes") else {}

    def write_onnx(self, model: Any, sample: dict[str, np.ndarray], path: Path) -> OnnxGraph:
        import torch

        from ai4hep.models.kinds.onnx_graph import export_graph

        inputs = [*model.inputs, *model.extras]
        example = tuple(torch.from_numpy(sample[n]) for n in inputs)
        outputs = output_names(model, example)
        wrapper = _wrapper(model)
        exporter = export_graph(wrapper, example, path, inputs, outputs)

        def reference(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            with torch.no_grad():
                return [t.numpy() for t in wrapper(*(torch.from_numpy(feed[n]) for n in inputs))]

        return OnnxGraph(inputs, outputs, exporter, reference)

    def fastml_route(self, model: Any) -> str | None:
        return getattr(model, "fastml_route", None)
