"""An impact-parameter likelihood-ratio tagger (IP3D-like): the flavour-tagging baseline that learns nothing but
templates.

Per flavour k (light, c, b), a histogram of the tracks' impact-parameter inputs (signed d0 and z0 significances, one
or two variables) from training jets of that flavour gives the per-track density p_k(x). A jet's log-likelihood is
the sum over its tracks, log L_k = sum_i log p_k(x_i), and its flavour probabilities are L_k / sum_j L_j (equal priors),
so D_b and the other discriminants read it like any network. Bin edges are quantiles of the training tracks, which
makes the templates blind to the affine normalisation the data module applies. Empty bins get a pseudo-count
(`smoothing`), so an unseen value never gives log 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ai4hep.atomic import atomic_path
from ai4hep.errors import UserError

EDGE_TRACKS = 200_000  # tracks used to place the quantile bin edges


class IP3DParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bins: int = Field(24, gt=1, description="bins per input variable")
    smoothing: float = Field(0.5, gt=0, description="pseudo-count added to every bin")


class IP3D:
    inputs = ("objects", "mask")
    extras: tuple[str, ...] = ()

    def __init__(self, params: IP3DParams, n_classes: int) -> None:
        self.params = params
        self.n_classes = n_classes
        self.edges: list[np.ndarray] = []
        self.log_density: np.ndarray | None = None  # (n_classes, bins_1[, bins_2])

    def fit(self, batches: Iterable[dict[str, np.ndarray]]) -> dict:
        """Two steps over the stream's batches: edges from the first EDGE_TRACKS tracks, then counts over all."""
        batches = iter(batches)
        held, n_tracks = [], 0
        for batch in batches:
            held.append(batch)
            n_tracks += int(batch["mask"].sum())
            if n_tracks >= EDGE_TRACKS:
                break
        if not held:
            raise UserError("the IP3D templates have no training jets; give more training shards")
        width = held[0]["objects"].shape[-1]
        if width not in (1, 2):
            raise UserError(
                f"ip3d builds 1D or 2D templates but the config gives {width} object features; "
                "set data.object_features to e.g. [d0sig, z0sig]"
            )
        tracks = np.concatenate([b["objects"][b["mask"]] for b in held])
        qs = np.linspace(0, 1, self.params.bins + 1)[1:-1]
        self.edges = [np.unique(np.quantile(tracks[:, k], qs)) for k in range(width)]
        counts = np.zeros((self.n_classes, *(len(e) + 1 for e in self.edges)))
        n_jets = 0
        for batch in (*held, *batches):
            idx = self._bins(batch["objects"])
            for k in range(self.n_classes):
                sel = batch["mask"] & (batch["label"] == k)[:, None]
                np.add.at(counts[k], tuple(i[sel] for i in idx), 1.0)
            n_jets += len(batch["label"])
        tracks_per_class = counts.reshape(self.n_classes, -1).sum(1)
        counts += self.params.smoothing
        totals = counts.reshape(self.n_classes, -1).sum(1)
        self.log_density = np.log(counts / totals.reshape(-1, *([1] * width)))
        return {"train_jets": n_jets, "train_tracks_per_class": tracks_per_class.astype(int).tolist()}

    def _bins(self, objects: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.searchsorted(e, objects[..., k], side="right") for k, e in enumerate(self.edges))

    def log_likelihood(self, objects: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(n_jets, n_classes): sum of per-track log densities over each jet's real tracks."""
        per_track = self.log_density[(slice(None), *self._bins(objects))]  # (classes, jets, tracks)
        return (per_track * mask[None]).sum(-1).T

    def predict_proba(self, objects: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ll = self.log_likelihood(objects, mask)
        ll -= ll.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return p / p.sum(axis=1, keepdims=True)

    @property
    def parameter_count(self) -> int:
        return int(self.log_density.size)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(
                json.dumps({"edges": [e.tolist() for e in self.edges], "log_density": self.log_density.tolist()})
            )

    @classmethod
    def load(cls, path: Path, params: IP3DParams, n_classes: int) -> IP3D:
        raw = json.loads(Path(path).read_text())
        model = cls(params, n_classes)
        model.edges = [np.asarray(e) for e in raw["edges"]]
        model.log_density = np.asarray(raw["log_density"])
        if model.log_density.shape[0] != n_classes:
            raise ValueError(f"templates for {model.log_density.shape[0]} classes, run has {n_classes}")
        return model
