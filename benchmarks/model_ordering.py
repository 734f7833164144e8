"""The ordering of all reference models on one dataset, same data, same split, same epoch budget.

The literature expects ParT >= ParticleNet > PFN > BDT on high-level features for `top` (arXiv:1902.08570,
2202.03772). Each model is trained from its config in configs/ (paper-size networks, or the *_small ones with
--small) with the data paths, epochs and early stopping replaced, then evaluated on the test shards of the split.

    python benchmarks/model_ordering.py --dataset top --jets 6000 --epochs 5 --out docs/benchmarks/ordering_top.json
    python benchmarks/model_ordering.py --dataset jetclass --jets 4000 --epochs 5 --small
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

from ai4hep.data.shards import generate
from ai4hep.evaluate import evaluate
from ai4hep.train.run import train

REPO = Path(__file__).resolve().parents[1]
MODELS = ["bdt", "mlp", "pfn", "efn", "particlenet", "part"]


def config_for(model: str, small: bool, data: Path, epochs: int, work: Path) -> Path:
    name = f"top_{model}_small.yaml" if small and (REPO / "configs" / f"top_{model}_small.yaml").exists() else None
    raw = yaml.safe_load((REPO / "configs" / (name or f"top_{model}.yaml")).read_text())
    raw["data"]["paths"] = [str(data)]
    if model != "bdt":
        raw.setdefault("trainer", {}).update({"max_epochs": epochs, "patience": epochs + 1})
    path = work / f"{model}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def summary(m: dict) -> dict:
    if "auc" in m:
        r = m["rejection"]["0.3"]
        return {
            "auc": m["auc"],
            "auc_error": m["auc_error"],
            "accuracy": m["accuracy"],
            "rejection_0.3": r["rejection"],
            "rejection_0.3_error": r["error"],
            "rejection_0.5": m["rejection"]["0.5"]["rejection"],
        }
    aucs = [v for v in m["auc_one_vs_rest"].values() if v is not None]
    rej = {c: v["rejection"]["0.5"]["rejection"] for c, v in m["vs_background"].items()}
    return {"accuracy": m["accuracy"], "mean_auc_one_vs_rest": sum(aucs) / len(aucs), "rejection_0.5_vs_qcd": rej}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="top")
    parser.add_argument("--jets", type=int, default=6000)
    parser.add_argument("--shard-size", type=int, default=None, help="default: jets/10")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--small", action="store_true", help="the *_small configs where they exist")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "out" / "ordering")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    shard = args.shard_size or max(1, args.jets // 10)
    data = args.work / f"{args.dataset}-{args.jets}j-{shard}s-seed{args.seed}"
    generate(args.dataset, args.jets, data, seed=args.seed, workers=os.cpu_count() or 1, shard_size=shard)
    tag = "small" if args.small else "full"
    rows = []
    for model in args.models:
        run = args.work / "runs" / f"{args.dataset}-{model}-{tag}-{args.epochs}ep"
        card = train(config_for(model, args.small, data, args.epochs, args.work), run, progress=False)
        metrics = evaluate(run, None)
        row = {
            "model": model,
            "parameters": card["parameter_count"],
            "train_jets_per_s": card["train_jets_per_s"],
            **summary(metrics),
            "test_jets": metrics["n_jets"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n| model | params | {' | '.join(k for k in rows[0] if k not in ('model', 'parameters'))} |")
    for r in rows:
        vals = [
            f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in r.items() if k not in ("model", "parameters")
        ]
        print(f"| {r['model']} | {r['parameters']} | {' | '.join(vals)} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"dataset": args.dataset, "jets": args.jets, "epochs": args.epochs, "small": args.small, "rows": rows}
        args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
