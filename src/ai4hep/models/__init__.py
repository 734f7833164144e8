"""Models selected by name in a config; each declares the batch inputs it reads (all aware of padding masks)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from ai4hep.errors import UserError
from ai4hep.models.bdt import BDTParams
from ai4hep.models.deepsets import EFN, PFN, DeepSetsParams
from ai4hep.models.dips import DIPS, DIPSParams
from ai4hep.models.gn2 import GN2, GN2Params
from ai4hep.models.ip3d import IP3D, IP3DParams
from ai4hep.models.mlp import MLP, MLPParams
from ai4hep.models.part import ParT, ParTParams
from ai4hep.models.particlenet import ParticleNet, ParticleNetParams


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "torch", "bdt" or "templates" (fitted without gradient descent)
    params: type[BaseModel]
    cls: type | None
    description: str

    @property
    def inputs(self) -> tuple[str, ...]:
        """The batch inputs the model always reads (some also read jet features when the config gives them)."""
        return self.cls.inputs if self.cls is not None else ("jet",)

    @property
    def extras(self) -> tuple[str, ...]:
        return self.cls.extras if self.cls is not None else ()

    def targets(self, params: BaseModel) -> tuple[str, ...]:
        """Per-object labels the model trains on besides the jet label (auxiliary tasks)."""
        return self.cls.targets_for(params) if hasattr(self.cls, "targets_for") else ()

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
        ModelEntry("bdt", "bdt", BDTParams, None, "LightGBM BDT on high-level jet features"),
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


def get_model(name: str) -> ModelEntry:
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; valid models: {', '.join(MODELS)}")
    return MODELS[name]
