"""Models selected by name in a config: the built-in ones, a package's through the `ai4hep.models` entry point, or
any importable class named as `module:Class` (as salt's class paths and weaver-core's network files allow).

A model class names the batch inputs it reads (`inputs`, `extras`; all aware of padding masks), may give its params
schema as a pydantic model in `Params` and its kind in `kind` (a built-in kind's name or a ModelKind subclass;
torch networks by default). `module:Class` imports an installed or importable module: the module is never read from
a run directory, so a run folder sent by a colleague cannot bring code with it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from pydantic import BaseModel, ConfigDict, ValidationError

from ai4hep.errors import UserError
from ai4hep.models.bdt import BDT, BDTParams
from ai4hep.models.deepsets import EFN, PFN, DeepSetsParams
from ai4hep.models.dips import DIPS, DIPSParams
from ai4hep.models.gn2 import GN2, GN2Params
from ai4hep.models.ip3d import IP3D, IP3DParams
from ai4hep.models.kinds import ModelKind, get_kind
from ai4hep.models.mlp import MLP, MLPParams
from ai4hep.models.part import ParT, ParTParams
from ai4hep.models.particlenet import ParticleNet, ParticleNetParams

ENTRY_POINT_GROUP = "ai4hep.models"
CLASS_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class FreeParams(BaseModel):
    """The params of a user's model that declares no `Params` schema: any keys, passed as attributes."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str | type[ModelKind]
    params: type[BaseModel]
    cls: type
    description: str

    @property
    def adapter(self) -> ModelKind:
        """The kind that fits, stores, runs and exports this model."""
        return get_kind(self.kind)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The batch inputs the model always reads (some also read jet features when the config gives them)."""
        return tuple(self.cls.inputs)

    @property
    def extras(self) -> tuple[str, ...]:
        return tuple(getattr(self.cls, "extras", ()))

    def targets(self, params: BaseModel) -> tuple[str, ...]:
        """Per-object labels the model trains on besides the jet label (auxiliary tasks)."""
        return tuple(self.cls.targets_for(params)) if hasattr(self.cls, "targets_for") else ()

    def parse_params(self, raw: dict) -> BaseModel:
        try:
            return self.params(**raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            valid = ", ".join(self.params.model_fields)
            raise UserError(f"model.params.{where}: {err['msg']} (valid params for {self.name}: {valid})") from None


MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry("bdt", "bdt", BDTParams, BDT, "LightGBM BDT on high-level jet features"),
        ModelEntry("mlp", "torch", MLPParams, MLP, "MLP on high-level jet features"),
        ModelEntry("pfn", "torch", DeepSetsParams, PFN, "Particle Flow Network (Deep Sets on particle features)"),
        ModelEntry("efn", "torch", DeepSetsParams, EFN, "Energy Flow Network (IRC-safe Deep Sets on angles)"),
        ModelEntry("particlenet", "torch", ParticleNetParams, ParticleNet, "ParticleNet (EdgeConv, dynamic kNN)"),
        ModelEntry("part", "torch", ParTParams, ParT, "Particle Transformer with pairwise interactions"),
        ModelEntry("ip3d", "templates", IP3DParams, IP3D, "impact-parameter likelihood ratio from track templates"),
        ModelEntry("dips", "torch", DIPSParams, DIPS, "DIPS: Deep Sets over tracks (flavour tagging)"),
        ModelEntry("gn2", "torch", GN2Params, GN2, "GN2-style transformer with track-origin and vertexing tasks"),
    )
}


def entry_for_class(name: str, cls: type) -> ModelEntry:
    """A registry entry for a user's model class, from what the class declares."""
    if not isinstance(cls, type):
        raise UserError(f"model '{name}' names {cls!r}, which is not a class; name a model class as module:Class")
    if not hasattr(cls, "inputs"):
        raise UserError(
            f"model class '{name}' declares no `inputs` (the batch keys it reads, e.g. ('jet',) or "
            "('objects', 'mask')); add the class attribute"
        )
    params = getattr(cls, "Params", FreeParams)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise UserError(f"model class '{name}': `Params` must be a pydantic BaseModel subclass")
    kind = getattr(cls, "kind", "torch")
    get_kind(kind)  # an unknown kind fails here, with the valid names
    doc = (cls.__doc__ or "").strip().splitlines()
    return ModelEntry(name, kind, params, cls, doc[0] if doc else f"user model {name}")


def _import_class(path: str) -> type:
    module_name, _, attr = path.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(
            f"model '{path}': cannot import module '{module_name}' ({exc}); install it or put it on PYTHONPATH"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"model '{path}': module '{module_name}' has no '{attr}'")
        obj = getattr(obj, part)
    return obj


@cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def get_model(name: str) -> ModelEntry:
    """The built-in model `name`, a model registered under the `ai4hep.models` entry point, or `module:Class`."""
    if name in MODELS:
        return MODELS[name]
    if name in _entry_points():
        ep = _entry_points()[name]
        try:
            cls = ep.load()
        except Exception as exc:
            raise UserError(f"model '{name}' (entry point {ep.value}) failed to load: {exc}") from None
        return entry_for_class(name, cls)
    if CLASS_PATH.match(name):
        return entry_for_class(name, _import_class(name))
    plugins = f", {', '.join(_entry_points())}" if _entry_points() else ""
    raise UserError(f"unknown model '{name}'; valid models: {', '.join(MODELS)}{plugins}, or a class as module:Class")
