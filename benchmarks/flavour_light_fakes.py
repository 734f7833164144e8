"""Which light jets pass a b-tagging cut: the truth origins of their tracks.

    python benchmarks/flavour_light_fakes.py out/flavour-ablation/runs/dips out/flavour-ablation/runs/gn2_style \\
        --test bench-data/flavour-test300k

The light rejection at 70% rests on a few dozen to a few hundred jets; this says what they carry. A light jet (no
weakly decaying b or c hadron within dR < 0.3) can still hold tracks of a b or c hadron farther out, which no tagger
can tell from heavy flavour by their tracks alone, or, since flavour card v2, of a long-lived strange hadron decaying
in flight ("other secondary"), which a tagger can learn to tell apart by the pair's vertex and mass.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from ai4hep.data.inspect import dataset_files
from ai4hep.evaluate import TrainedRun, predict
from ai4hep.metrics.flavour import LIGHT, B, discriminant_b, working_point_cut
from ai4hep.models.tasks import ORIGIN_CLASSES

SHOWN = ("from_b", "from_c", "other_secondary")


def _origins(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Per jet: its flavour label, and its tracks' origin classes (-1 for padding)."""
    origin, labels = [], []
    for f in files:
        with h5py.File(f) as h:
            tracks = h["tracks"][...]
            origin.append(np.where(tracks["valid"], tracks["origin"], -1))
            labels.append(h["jets"]["label"][...])
    return np.concatenate(labels), np.concatenate(origin)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--test", type=Path, required=True, help="flavour dataset to evaluate on")
    ap.add_argument("--working-point", type=float, default=0.7, help="b-jet efficiency of the cut")
    args = ap.parse_args()
    files = dataset_files(args.test)
    labels, origin = _origins(files)
    for run in args.runs:
        pred = predict(TrainedRun(run), files, aux=False)
        if not np.array_equal(pred.labels, labels):
            raise SystemExit(f"{run}: its predictions are not in the files' jet order")
        disc = discriminant_b(pred.probs)
        cut = working_point_cut(disc[labels == B], args.working_point)  # the cut of the rejection tables
        is_light = labels == LIGHT
        passing = origin[is_light & (disc >= cut)]
        carries = {name: (passing == ORIGIN_CLASSES.index(name)).any(axis=1) for name in SHOWN}
        none = ~np.logical_or.reduce(list(carries.values()))
        counts = ", ".join(f"a {name} track {int(v.sum())}" for name, v in carries.items())
        n_light = int(is_light.sum())
        print(f"{run}: {len(passing)} of {n_light} light jets pass; with {counts}; none of these {none.sum()}")
    every = origin[labels == LIGHT]
    share = {name: 100 * (every == ORIGIN_CLASSES.index(name)).any(axis=1).mean() for name in SHOWN}
    shares = ", ".join(f"{name} {value:.2f}%" for name, value in share.items())
    print(f"all light jets carrying a track of each kind: {shares}")


if __name__ == "__main__":
    main()
