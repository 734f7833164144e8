"""Two versions of ai4hep side by side on the same data: generation, training, evaluation and ONNX export rates, and
whether they give the same numbers.

    git worktree add /tmp/ai4hep-base <commit>          # or any checkout of the older version
    python benchmarks/version_compare.py --base /tmp/ai4hep-base --out docs/benchmarks/version_compare.json

Each measurement runs the `ai4hep` command of one version in a fresh process (PYTHONPATH=<version>/src, in this
virtualenv; the native helpers are taken from this checkout when the other has none), the two versions alternating
(base first in odd rounds, head first in even ones) so that drifts of a shared machine fall on both. Training
throughput is the model card's `train_jets_per_s` (data loading and optimiser steps), inference the evaluation's
`inference_jets_per_s` (reading and preprocessing included). Same seeds and threads on both sides: the runs'
validation losses, AUCs and the datasets' content hashes are compared for equality, not only the rates. The record
is rewritten after every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

HEAD = Path(__file__).resolve().parents[1]
NATIVE = Path("ai4hep/data/generate/native")
TRAININGS = {  # name -> (config, dataset, trainer overrides)
    "bdt": ("top_bdt.yaml", "top", {}),
    "mlp": ("top_mlp.yaml", "top", {"max_epochs": 4}),
    "particlenet_small": ("top_particlenet_small.yaml", "top", {"max_epochs": 2}),
    "gn2_small": ("flavour_gn2_small.yaml", "flavour", {"max_epochs": 2}),
}


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}


def _ai4hep(src: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ai4hep.cli", *args], env=_env(src), check=True, capture_output=True)
    return time.perf_counter() - start


def _prepare(tree: Path) -> Path:
    """The tree's src folder, with this checkout's compiled native helpers where it has none (same C++ sources)."""
    src = tree / "src"
    for so in (HEAD / "src" / NATIVE).glob("*.so"):
        target = src / NATIVE / so.name
        if not target.exists():
            shutil.copy2(so, target)
    return src


def _config(tree: Path, name: str, work: Path) -> Path:
    config, _, trainer = TRAININGS[name]
    raw = yaml.safe_load((tree / "configs" / config).read_text())
    raw.setdefault("trainer", {}).update({"threads": 1, **trainer})
    if name == "bdt":
        raw["trainer"] = {"threads": 1}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _hash(folder: Path) -> str:
    return json.loads((folder / "dataset.json").read_text()).get("dataset_hash", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="checkout of the older version")
    ap.add_argument("--head", type=Path, default=HEAD, help="checkout of the newer version (default: this one)")
    ap.add_argument("--work", type=Path, default=HEAD / "bench-data" / "version_compare")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--gen-jets", type=int, default=400)
    ap.add_argument("--train-jets", type=int, default=2000)
    ap.add_argument("--only", nargs="*", default=list(TRAININGS), help="trainings to run")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    sides = {"base": args.base.resolve(), "head": args.head.resolve()}
    srcs = {k: _prepare(v) for k, v in sides.items()}
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    commits = {
        k: subprocess.run(["git", "-C", str(v), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        for k, v in sides.items()
    }
    record: dict = {"commits": commits, "rounds": args.rounds, "generation": {}, "training": {}}

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(record, indent=1))

    data = {}
    for ds, n in (("top", args.train_jets), ("flavour", args.train_jets)):
        data[ds] = args.work / "data" / ds
        _ai4hep(srcs["head"], "data", "generate", ds, "--jets", str(n), "--out", str(data[ds]), "--workers", "2",
                "--seed", "5", "--shard-size", str(n // 8))  # fmt: skip
    for rnd in range(args.rounds):
        order = ("base", "head") if rnd % 2 == 0 else ("head", "base")
        for ds in ("top", "flavour"):
            row = record["generation"].setdefault(ds, {"seconds": {"base": [], "head": []}, "hash": {}})
            for side in order:
                out = args.work / f"gen-{ds}-{side}-{rnd}"
                row["seconds"][side].append(_ai4hep(srcs[side], "data", "generate", ds, "--jets", str(args.gen_jets),
                                                    "--out", str(out), "--workers", "1", "--seed", "3",
                                                    "--shard-size", str(args.gen_jets)))  # fmt: skip
                row["hash"].setdefault(side, _hash(out))
                shutil.rmtree(out)
            save()
        for name in args.only:
            row = record["training"].setdefault(name, {k: [] for k in ("base", "head")})
            for side in order:
                run = args.work / f"run-{name}-{side}-{rnd}"
                config = _config(sides[side], name, args.work)
                ds = data[TRAININGS[name][1]]
                train_s = _ai4hep(
                    srcs[side], "train", str(config), "--out", str(run), "--data", str(ds), "--no-progress"
                )
                eval_s = _ai4hep(srcs[side], "evaluate", str(run))
                export_s = _ai4hep(srcs[side], "export", "onnx", str(run))
                card = json.loads((run / "model_card.json").read_text())
                metrics = json.loads((run / "eval" / "metrics.json").read_text())
                row[side].append(
                    {
                        "train_s": round(train_s, 2),
                        "train_jets_per_s": card["train_jets_per_s"],
                        "evaluate_s": round(eval_s, 2),
                        "inference_jets_per_s": round(metrics["inference_jets_per_s"], 1),
                        "export_onnx_s": round(export_s, 2),
                        "best_val_loss": card.get("best_val_loss"),
                        "val_metrics": card["metrics"],
                        "accuracy": metrics["accuracy"],
                    }
                )
                shutil.rmtree(run)
                save()
    summary = {}
    for ds, row in record["generation"].items():
        b, h = (statistics.median(row["seconds"][s]) for s in ("base", "head"))
        summary[f"generate {ds}"] = {"base_s": b, "head_s": h, "head/base": h / b,
                                     "same_hash": row["hash"]["base"] == row["hash"]["head"]}  # fmt: skip
    for name, row in record["training"].items():
        med = {s: {k: statistics.median(r[k] for r in row[s]) for k in ("train_jets_per_s", "inference_jets_per_s",
               "train_s", "evaluate_s", "export_onnx_s")} for s in ("base", "head")}  # fmt: skip
        same = all(
            rb["val_metrics"] == rh["val_metrics"] and rb["accuracy"] == rh["accuracy"]
            for rb, rh in zip(row["base"], row["head"], strict=True)
        )
        summary[name] = {
            **{f"{k} head/base": med["head"][k] / med["base"][k] for k in med["base"]},
            "base": med["base"],
            "head": med["head"],
            "same_results": same,
        }
    record["summary"] = summary
    save()
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
