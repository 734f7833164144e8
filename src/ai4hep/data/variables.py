"""Input variables of a training config: stored fields, derived per-object quantities, and elementwise transforms.

A variable is written `name` or `transform(name)` in YAML, e.g. `log(pt)`, `signed_log(d0sig)`. Derived object
variables need the jet row (pT and energy fractions), so they are computed here from both arrays.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ai4hep.errors import UserError

TINY = 1e-8

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "log": lambda x: np.log(np.maximum(x, TINY)),
    "log1p": lambda x: np.log1p(np.maximum(x, 0.0)),
    "abs": np.abs,
    "signed_log": lambda x: np.sign(x) * np.log1p(np.abs(x)),
}

# Fields that are bookkeeping or truth, never model inputs.
NOT_INPUTS = {"label", "process", "event", "valid", "flavour", "n_bhad", "n_chad", "origin", "vertex", "pid"}


def _pt_rel(obj: np.ndarray, jets: np.ndarray) -> np.ndarray:
    return obj["pt"] / np.maximum(jets["pt"][:, None], TINY)


def _e_rel(obj: np.ndarray, jets: np.ndarray) -> np.ndarray:
    energy = obj["energy"] if "energy" in obj.dtype.names else obj["pt"] * np.cosh(obj["eta"])
    return energy / np.maximum(jets["energy"][:, None], TINY)


def _dr(obj: np.ndarray, jets: np.ndarray) -> np.ndarray:
    return np.hypot(obj["deta"], obj["dphi"])


DERIVED: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"pt_rel": _pt_rel, "e_rel": _e_rel, "dr": _dr}

_SPEC = re.compile(r"^\s*(?:(?P<t>[a-z_0-9]+)\(\s*(?P<a>[A-Za-z_0-9]+)\s*\)|(?P<b>[A-Za-z_0-9]+))\s*$")


@dataclass(frozen=True)
class Variable:
    name: str  # stored field or derived name
    transform: str = "none"

    @property
    def label(self) -> str:
        return self.name if self.transform == "none" else f"{self.transform}({self.name})"

    @classmethod
    def parse(cls, spec: str) -> Variable:
        m = _SPEC.match(spec)
        if not m:
            raise UserError(f"input variable '{spec}' is not 'name' or 'transform(name)', e.g. 'log(pt)'")
        name, transform = (m["a"], m["t"]) if m["a"] else (m["b"], "none")
        if transform not in TRANSFORMS:
            raise UserError(f"unknown transform '{transform}' in '{spec}'; valid: {', '.join(TRANSFORMS)}")
        return cls(name=name, transform=transform)


def available(dtype: np.dtype, objects: bool) -> list[str]:
    """Variable names a model can read from arrays of this dtype."""
    names = [n for n in dtype.names if n not in NOT_INPUTS and dtype[n].kind in "fiub"]
    return names + (list(DERIVED) if objects else [])


def check_available(variables: list[Variable], dtype: np.dtype, objects: bool, where: str) -> None:
    valid = available(dtype, objects)
    for v in variables:
        if v.name not in valid:
            raise UserError(f"{where} has no input variable '{v.name}'; valid names: {', '.join(valid)}")


def compute(variables: list[Variable], rows: np.ndarray, jets: np.ndarray | None = None) -> np.ndarray:
    """A float32 array (..., n_variables) with the transforms applied (padding slots hold whatever fields hold)."""
    out = np.empty((*rows.shape, len(variables)), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, v in enumerate(variables):
            raw = DERIVED[v.name](rows, jets) if v.name in DERIVED else rows[v.name]
            out[..., i] = TRANSFORMS[v.transform](np.asarray(raw, dtype=np.float64))
    return out
