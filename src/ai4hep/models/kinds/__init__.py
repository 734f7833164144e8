"""Model kinds: the adapters through which training, evaluation and export handle every model (see base.py)."""

from __future__ import annotations

from ai4hep.errors import UserError
from ai4hep.models.kinds.base import FitContext, ModelKind, OnnxGraph, TrainerConfig
from ai4hep.models.kinds.bdt import BDTKind
from ai4hep.models.kinds.templates import TemplatesKind
from ai4hep.models.kinds.torch import TorchKind

KINDS: dict[str, ModelKind] = {k.name: k for k in (TorchKind(), BDTKind(), TemplatesKind())}


def get_kind(kind: str | type[ModelKind] | ModelKind) -> ModelKind:
    """A built-in kind by name, or a user's ModelKind subclass (or instance) named by a model class."""
    if isinstance(kind, ModelKind):
        return kind
    if isinstance(kind, type) and issubclass(kind, ModelKind):
        return kind()
    if isinstance(kind, str) and kind in KINDS:
        return KINDS[kind]
    raise UserError(f"unknown model kind {kind!r}; valid kinds: {', '.join(KINDS)} or a ModelKind subclass")


__all__ = ["KINDS", "FitContext", "ModelKind", "OnnxGraph", "TrainerConfig", "get_kind"]
