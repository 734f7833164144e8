"""ONNX export of every model: the largest |onnxruntime - original| on the whole test split of small-budget runs.

Each config in configs/ (the *_small networks, as in the bench suite's small budget) is trained on a generated sample,
exported with `ai4hep export onnx` validating on every test jet, and the largest difference per output is recorded.
For the BDTs the script also converts the booster with plain onnxmltools (thresholds rounded to the nearest float32)
and compares both files with LightGBM on the test jets and on threshold probes (each test jet with one feature set
just above one split threshold): what the rounding down in ai4hep.models.kinds.bdt_onnx is for.

    python benchmarks/onnx_export.py --jets 2000 --epochs 2 --out docs/benchmarks/onnx_export.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import yaml

from ai4hep.data.shards import generate
from ai4hep.export.onnx import export_onnx
from ai4hep.models.kinds.bdt_onnx import threshold_probes
from ai4hep.run import TrainedRun
from ai4hep.train.run import train

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "top": ["top_mlp", "top_pfn", "top_efn", "top_particlenet_small", "top_part_small", "top_bdt"],
    "flavour": ["flavour_dips", "flavour_gn2_small", "flavour_ip3d"],
    "hlf5": ["hlf5_mlp", "hlf5_bdt"],
}


def config_for(name: str, data: Path, epochs: int, work: Path) -> Path:
    raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    raw["data"]["paths"] = [str(data)]
    if "trainer" in raw:
        raw["trainer"].update({"max_epochs": epochs, "patience": epochs + 1})
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def bdt_thresholds(run: Path, exported: Path) -> dict:
    """|ONNX - LightGBM| of ai4hep's file and of a plain onnxmltools conversion (thresholds rounded to nearest), on
    the test split and on the threshold probes."""
    import onnxmltools
    import onnxruntime as ort
    from onnxmltools.convert.common.data_types import FloatTensorType

    tagger = TrainedRun(run)
    x = np.concatenate([b["jet"] for b in tagger.stream(tagger.test_files())])
    plain = onnxmltools.convert_lightgbm(
        tagger.model.booster, initial_types=[("jet", FloatTensorType([None, x.shape[1]]))], zipmap=False
    )
    sessions = {
        "plain_onnxmltools": (ort.InferenceSession(plain.SerializeToString()), "probabilities"),
        "ai4hep": (ort.InferenceSession(str(exported)), "probs"),
    }
    out = {}
    for inputs, where in ((x, "test_split"), (threshold_probes(tagger.model.booster, x), "threshold_probes")):
        want = tagger.model.predict_proba(inputs)
        for name, (session, output) in sessions.items():
            diff = np.abs(session.run([output], {"jet": inputs})[0] - want).max(1)
            out[f"{name}_{where}"] = {
                "rows": len(inputs),
                "max_abs_diff": float(diff.max()),
                "rows_over_1e-4": int((diff > 1e-4).sum()),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=2000, help="jets per dataset (10%% of the shards are the test)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--work", type=Path, default=REPO / "out" / "onnx_export")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        shard = max(1, args.jets // 10)
        data = args.work / f"{dataset}-{args.jets}j-seed{args.seed}"
        generate(dataset, args.jets, data, seed=args.seed, workers=os.cpu_count() or 1, shard_size=shard)
        for name in CONFIGS[dataset]:
            run = args.work / "runs" / f"{name}-{args.jets}j-{args.epochs}ep"
            card = train(config_for(name, data, args.epochs, args.work), run, progress=False)
            start = time.perf_counter()
            r = export_onnx(run, run / "export" / "model.onnx", batches=10**9)  # every test batch
            row = {
                "config": name,
                "model": card["model"],
                "parameters": card["parameter_count"],
                "exporter": r["exporter"],
                "checked_against": r["checked_against"],
                "test_jets": r["validated_jets"],
                "max_abs_diff": r["max_abs_diff"],
                "export_s": round(time.perf_counter() - start, 1),
                "file_kb": round(Path(r["file"]).stat().st_size / 1024, 1),
            }
            if card["model"] == "bdt":
                row["thresholds"] = bdt_thresholds(run, Path(r["file"]))
            rows.append(row)
            diffs = ", ".join(f"{k} {v:.1e}" for k, v in r["max_abs_diff"].items())
            print(f"{name:22} {card['model']:12} {row['test_jets']:5} test jets: {diffs}", flush=True)
    result = {"jets": args.jets, "epochs": args.epochs, "seed": args.seed, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
