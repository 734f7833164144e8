"""`data info`: what a dataset file or folder holds, after validating every shard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ai4hep.data.schema import Shard, read_shard
from ai4hep.errors import UserError


def dataset_files(path: Path) -> list[Path]:
    """The shard files of a dataset folder (sorted), or the single file given."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.glob("*.h5") if not p.name.startswith("."))
        if not files:
            raise UserError(f"{path} holds no .h5 shard; generate one with 'ai4hep data generate'")
        return files
    return [path]


def summarise(path: Path) -> dict:
    """Validate every shard (content hash included) one at a time, so memory follows one shard, not the dataset."""
    path = Path(path)
    first: Shard | None = None
    jets_parts, n_valid_consts, track_sums = [], 0, {}
    for f in dataset_files(path):
        shard = read_shard(f)
        if first is None:
            first = shard
        elif shard.attrs["card_digest"] != first.attrs["card_digest"]:
            raise UserError(f"{path} mixes shards of different datasets; keep one dataset per folder")
        else:
            for name, arr in shard.arrays.items():
                if name not in first.arrays or arr.dtype != first.arrays[name].dtype:
                    raise UserError(
                        f"{f}: its '{name}' table has another layout than {first.path.name}'s; regenerate it with "
                        "'ai4hep data generate'"
                    )
        jets_parts.append(shard.arrays["jets"])
        n_valid_consts += int(shard.arrays["consts"]["valid"].sum())
        if "tracks" in shard.arrays:
            tracks, labels = shard.arrays["tracks"], shard.arrays["jets"]["label"]
            for label in np.unique(labels):
                tr = tracks[labels == label]
                sig = np.abs(tr["d0sig"][tr["valid"]])
                total, count = track_sums.get(int(label), (0.0, 0))
                track_sums[int(label)] = (total + float(sig.sum()), count + len(sig))
    assert first is not None
    card = first.card
    jets = np.concatenate(jets_parts)
    classes = card["classes"]
    per_class = []
    for label, name in enumerate(classes):
        sel = jets["label"] == label
        if not sel.any():
            per_class.append({"class": name, "jets": 0})
            continue
        per_class.append(
            {
                "class": name,
                "jets": int(sel.sum()),
                "pt_mean": float(np.mean(jets["pt"][sel])),
                "mass_median": float(np.median(jets["mass"][sel])),
                "mass_sd_median": float(np.median(jets["mass_sd"][sel])),
                "n_consts_mean": float(np.mean(jets["n_consts"][sel])),
                "tau32_mean": float(np.mean(jets["tau32"][sel])),
            }
        )
    summary = {
        "path": str(path),
        "dataset": card["name"],
        "card_version": int(first.attrs["card_version"]),
        "description": card["description"],
        "reference": card["reference"],
        "detector": json.loads(first.attrs["detector"])["name"],
        "pileup_mu": json.loads(first.attrs["detector"])["pileup_mu"],
        "seed": int(first.attrs["seed"]),
        "ai4hep_version": first.attrs["ai4hep_version"],
        "shards": len(jets_parts),
        "jets": len(jets),
        "valid_consts_mean": n_valid_consts / max(len(jets), 1),
        "arrays": {name: list(arr.dtype.names) for name, arr in first.arrays.items()},
        "shapes": {name: [len(jets), *arr.shape[1:]] for name, arr in first.arrays.items()},
        "classes": per_class,
    }
    if track_sums:
        summary["tracks_d0sig_abs_mean"] = {
            classes[label]: total / count for label, (total, count) in sorted(track_sums.items()) if count
        }
    from ai4hep.data.shards import MANIFEST  # lazily: the generation stack is not needed to read data

    manifest = path / MANIFEST if path.is_dir() else None
    if manifest is not None:
        if manifest.exists():
            m = json.loads(manifest.read_text())
            summary["complete"] = m["n_jets"] == len(jets)
            summary["dataset_hash"] = m["dataset_hash"]
        else:
            summary["complete"] = False
    return summary


def format_summary(s: dict) -> str:
    lines = [
        f"{s['path']}: dataset '{s['dataset']}' v{s['card_version']} ({s['description']})",
        f"  reference: {s['reference']}",
        f"  {s['jets']} jets in {s['shards']} shard(s), seed {s['seed']}, detector {s['detector']}"
        f" (pile-up mu {s['pileup_mu']}), ai4hep {s['ai4hep_version']}",
    ]
    if "complete" in s:
        state = "complete" if s["complete"] else "INCOMPLETE: run the same generate command again to finish"
        lines.append(f"  status: {state}" + (f", dataset hash {s['dataset_hash'][:16]}" if "dataset_hash" in s else ""))
    for name, shape in s["shapes"].items():
        lines.append(f"  {name}{tuple(shape)}: {', '.join(s['arrays'][name])}")
    lines.append(f"  {'class':>8} {'jets':>6} {'<pT>':>7} {'m med':>7} {'m_SD med':>8} {'<n_const>':>9} {'<tau32>':>7}")
    for c in s["classes"]:
        if not c["jets"]:
            lines.append(f"  {c['class']:>8} {0:>6}")
            continue
        lines.append(
            f"  {c['class']:>8} {c['jets']:>6} {c['pt_mean']:>7.1f} {c['mass_median']:>7.1f} "
            f"{c['mass_sd_median']:>8.1f} {c['n_consts_mean']:>9.1f} {c['tau32_mean']:>7.3f}"
        )
    if "tracks_d0sig_abs_mean" in s:
        parts = [f"{k} {v:.2f}" for k, v in s["tracks_d0sig_abs_mean"].items()]
        lines.append("  mean |d0 significance| of tracks: " + ", ".join(parts))
    return "\n".join(lines)
