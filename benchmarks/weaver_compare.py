"""ai4hep's ParticleNet and ParT against weaver-core's own ParticleNet and ParticleTransformer, same jets, same budget.

Both frameworks train on the same generated `top` shards (one fixed split by shard: the same train / val / test files,
HDF5 for ai4hep and their parquet export for weaver), with the same inputs (log pT, log E, log pT/pT_jet,
log E/E_jet, deta, dphi, dR, charge; up to `max_objects` constituents; (deta, dphi) points for ParticleNet, (px, py,
pz, E) for ParT's pair features), the same architecture sizes, epochs, batch size, learning rate (AdamW, cosine
decay), thread count and CPU. Test AUC (Hanley-McNeil error) and rejection 1/eps_B at eps_S = 0.3 (binomial error)
are computed for both from their test predictions with the same code, `ai4hep.metrics.binary`. Training throughput
is jets/s over the training steps only (data loading included; validation, testing and set-up excluded): ai4hep's
`train_jets_per_s` from the model card; for weaver, the sum of training jets over the sum of training-loop times,
both read from weaver's per-epoch log line "Processed N entries in total (avg. speed X entries/s)".

Needs weaver-core in the environment (`pip install weaver-core`; the `weaver` command). Generated data, configs and
runs go under --work. Full benchmark (hours on 2 cores) and a quick check:

    python benchmarks/weaver_compare.py --out docs/benchmarks/weaver_compare.json
    python benchmarks/weaver_compare.py --small --jets 1500 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import awkward as ak
import h5py
import numpy as np
import yaml

from ai4hep.data.loader import file_info
from ai4hep.data.variables import Variable
from ai4hep.metrics.binary import auc, auc_error, rejection_at
from ai4hep.run.card import cpu_model

REPO = Path(__file__).resolve().parent.parent
MODELS = ("particlenet", "part")
FRAMEWORKS = ("ai4hep", "weaver")
EFF_S = 0.3
WEIGHT_DECAY = 1e-4  # ai4hep's TrainerConfig default, given to weaver's AdamW too
# One line per training epoch in weaver's log (weaver.utils.nn.tools.train_classification), then "Train AvgLoss".
WEAVER_SPEED = re.compile(r"Processed (\d+) entries in total \(avg\. speed ([0-9.eE+-]+) entries/s\)")

# weaver's ParticleNet / ParticleTransformer keyword arguments matching ai4hep's configs/top_*.yaml (same widths, k,
# heads, blocks). weaver's ParticleNet sizes its fusion layer itself: clip(C // 128 * 128, 128, 1024) of the summed
# block widths C, i.e. 384 (paper) and 128 (small), the same as ai4hep's `fusion`.
WEAVER_PARAMS: dict[tuple[str, bool], dict[str, Any]] = {
    ("particlenet", False): {
        "conv_params": [(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))],
        "fc_params": [(256, 0.1)],
        "use_fusion": True,
    },
    ("particlenet", True): {
        "conv_params": [(8, (32, 32, 32)), (8, (64, 64, 64))],
        "fc_params": [(64, 0.1)],
        "use_fusion": True,
    },
    ("part", False): {
        "embed_dims": [128, 512, 128],
        "pair_embed_dims": [64, 64, 64],
        "num_heads": 8,
        "num_layers": 8,
        "num_cls_layers": 2,
        "fc_params": [],
        "use_pre_activation_pair": False,
    },
    ("part", True): {
        "embed_dims": [64, 128, 64],
        "pair_embed_dims": [32, 32],
        "num_heads": 4,
        "num_layers": 3,
        "num_cls_layers": 1,
        "fc_params": [],
        "use_pre_activation_pair": False,
    },
}

# The network config weaver imports (`--network-config`): get_model / get_loss, weaver's own model classes.
NETWORK_TEMPLATE = '''"""weaver network config written by benchmarks/weaver_compare.py: weaver-core's {cls}."""

import numpy as np
import torch
from weaver.nn.model.{module} import {cls}
from weaver.utils.logger import _logger

PARAMS = {params!r}


class Net(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = {cls}(**kwargs)

    def forward(self, {args}):
        return self.mod({call})


def get_model(data_config, seed=1, threads=0, **kwargs):
    torch.manual_seed(seed)
    np.random.seed(seed)
    if threads:
        torch.set_num_threads(threads)
    cfg = dict(PARAMS, num_classes=len(data_config.label_value))
    cfg[{dim_key!r}] = len(data_config.input_dicts["pf_features"])
    cfg.update(kwargs)
    model = Net(**cfg)
    _logger.info("ai4hep-bench parameters %d", sum(p.numel() for p in model.parameters()))
    info = {{
        "input_names": list(data_config.input_names),
        "input_shapes": {{k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()}},
        "output_names": ["softmax"],
        "dynamic_axes": {{**{{k: {{0: "N", 2: "n_" + k.split("_")[0]}} for k in data_config.input_names}},
                         "softmax": {{0: "N"}}}},
    }}
    return model, info


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
'''

NETWORKS = {
    "particlenet": {
        "module": "ParticleNet",
        "cls": "ParticleNet",
        "args": "points, features, mask",
        "call": "points, features, mask",
        "dim_key": "input_dims",
        "inputs": ("pf_points", "pf_features", "pf_mask"),
    },
    "part": {
        "module": "ParticleTransformer",
        "cls": "ParticleTransformer",
        "args": "features, vectors, mask",
        "call": "features, v=vectors, mask=mask",
        "dim_key": "input_dim",
        "inputs": ("pf_features", "pf_vectors", "pf_mask"),
    },
}

# The same per-constituent inputs as ai4hep's object_features, in the same order, as weaver `new_variables`.
FEATURES = {
    "log(pt)": ("part_logpt", "np.log(part_pt)"),
    "log(energy)": ("part_loge", "np.log(part_energy)"),
    "log(pt_rel)": ("part_logptrel", "np.log(part_pt / jet_pt)"),
    "log(e_rel)": ("part_logerel", "np.log(part_energy / jet_energy)"),
    "deta": ("part_deta", None),
    "dphi": ("part_dphi", None),
    "dr": ("part_dr", "np.hypot(part_deta, part_dphi)"),
    "charge": ("part_charge", None),
}
RAW = {"part_deta", "part_dphi"}  # not standardised by weaver (see weaver_data_config)

# What still differs between the two sides (written into the JSON with the results).
DIFFERENCES = [
    "standardisation: ai4hep mean/std of all 8 features; weaver's auto (median, 16-84% half-width, clipped to +-5) "
    "on 6 of them, deta and dphi raw (weaver keeps one setting per variable, and they are raw ParticleNet points)",
    "weaver trims every batch to its longest jet (in training to a random 90-102% length quantile, from step 6 on), "
    "ai4hep to its longest jet; both embed ParT's pair features for real pairs only in training",
    "weight decay: ai4hep on all parameters; weaver not on biases, norms and the class token",
    "cosine learning-rate decay: ai4hep per epoch, weaver per step ('warmup+cos' with no warm-up)",
    "class weights: ai4hep balanced (about 1 here, top is 50/50); weaver none",
    "test checkpoint: ai4hep the best validation loss, weaver the best validation accuracy",
    "weaver drops the last incomplete batch in training and validation; an epoch is floor(n_train / batch) batches",
    "weaver loads the next pass over the data in a background thread; ai4hep reads in the training loop",
    "ParT: weaver's blocks carry per-head and residual scales (0.1% more parameters) and its input "
    "embedding starts with BatchNorm (ai4hep: LayerNorm)",
]


@dataclass
class Dataset:
    h5: list[Path]
    parquet: list[Path]
    train: list[int]
    val: list[int]
    test: list[int]
    n_jets: dict[str, int]


def _exe(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise SystemExit(
            f"'{name}' not found next to {sys.executable} or on PATH; install it (pip install weaver-core)"
        )
    return found


def _run(cmd: list[str], log: Path, threads: int) -> float:
    """Run a command with its output in `log`; returns its wall time. Stops the benchmark on failure."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    seconds = time.perf_counter() - start
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"command failed (exit {rc}), log {log}:\n{tail}")
    return seconds


def prepare_data(args: argparse.Namespace) -> Dataset:
    """Generate (or reuse) the shards, export them to parquet, and fix the split by shard (last 10% test, 10% val)."""
    shard = args.shard_size or max(1, args.jets // 10)
    folder = args.work / "data" / f"top-{args.jets}j-{shard}s-seed{args.seed}"
    h5_dir, pq_dir = folder / "h5", folder / "parquet"
    ai4hep = _exe("ai4hep")
    cmd = [ai4hep, "data", "generate", "top", "--jets", str(args.jets), "--out", str(h5_dir)]
    cmd += ["--workers", str(args.workers), "--seed", str(args.seed), "--shard-size", str(shard)]
    print(f"data: {args.jets} top jets in shards of {shard} -> {h5_dir}", flush=True)
    _run(cmd, folder / "generate.log", args.threads)
    h5 = sorted(h5_dir.glob("top-*.h5"))
    parquet = [pq_dir / f"{p.stem}.parquet" for p in h5]
    if not all(q.exists() and q.stat().st_mtime >= p.stat().st_mtime for p, q in zip(h5, parquet, strict=True)):
        _run(
            [ai4hep, "data", "export", str(h5_dir), "--out", str(pq_dir), "--format", "parquet"],
            folder / "export.log",
            1,
        )
    n = len(h5)
    n_test = n_val = max(1, round(0.1 * n))
    if n - n_test - n_val < 1:
        raise SystemExit(f"{n} shards cannot be split into train/val/test; lower --shard-size")
    if any(":" in str(p) for p in parquet):
        raise SystemExit("weaver reads 'name:path' in file lists; use a --work path without ':'")
    idx = list(range(n))
    data = Dataset(h5, parquet, idx[: n - n_test - n_val], idx[n - n_test - n_val : n - n_test], idx[n - n_test :], {})
    for split in ("train", "val", "test"):
        data.n_jets[split] = sum(file_info(h5[i], "consts").n_jets for i in getattr(data, split))
    return data


def ai4hep_config(model: str, small: bool) -> dict:
    name = f"top_{model}{'_small' if small else ''}.yaml"
    return yaml.safe_load((REPO / "configs" / name).read_text())


def budget(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """Epochs, batch size, learning rate and constituents: the flags, else the ai4hep config's values."""
    cfg = ai4hep_config(model, args.small)
    return {
        "epochs": args.epochs or cfg["trainer"]["max_epochs"],
        "batch_size": args.batch_size or cfg["data"]["batch_size"],
        "lr": args.lr or cfg["trainer"]["lr"],
        "max_objects": cfg["data"]["max_objects"],
    }


def run_ai4hep(model: str, args: argparse.Namespace, data: Dataset, b: dict[str, Any]) -> dict[str, Any]:
    tag = f"ai4hep_{model}{'_small' if args.small else ''}"
    run, cfg_path = args.work / "runs" / tag, args.work / "configs" / f"{tag}.yaml"
    cfg = ai4hep_config(model, args.small)
    cfg["seed"] = args.seed
    cfg["data"].pop("paths", None)
    for split in ("train", "val", "test"):
        cfg["data"][split] = [str(data.h5[i]) for i in getattr(data, split)]
    cfg["data"]["batch_size"] = b["batch_size"]
    cfg["trainer"].update(
        max_epochs=b["epochs"], lr=b["lr"], patience=b["epochs"] + 1, accelerator="cpu", threads=args.threads
    )  # patience > epochs: no early stopping, the same number of epochs as weaver
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    shutil.rmtree(run, ignore_errors=True)
    ai4hep = _exe("ai4hep")
    print(f"{tag}: training ({b['epochs']} epochs) -> {run}", flush=True)
    wall = _run(
        [ai4hep, "train", str(cfg_path), "--out", str(run), "--no-progress"], run.parent / f"{tag}.log", args.threads
    )
    test = [arg for i in data.test for arg in ("--data", str(data.h5[i]))]
    _run([ai4hep, "evaluate", str(run), *test], run.parent / f"{tag}.eval.log", 1)
    card = json.loads((run / "model_card.json").read_text())
    with h5py.File(run / "eval" / "predictions.h5", "r") as f:
        score, labels = f["probs"][:, 1], f["label"][:]
    row = {"framework": "ai4hep", "model": model, **metrics(score, labels == 1)}
    check = json.loads((run / "eval" / "metrics.json").read_text())
    if abs(check["auc"] - row["auc"]) > 1e-9:
        raise SystemExit(f"{tag}: AUC from predictions {row['auc']} differs from metrics.json {check['auc']}")
    row.update(
        train_jets_per_s=card["train_jets_per_s"],
        parameters=card["parameter_count"],
        epochs=card["epochs"],
        train_jets=data.n_jets["train"] * card["epochs"],
        train_command_wall_s=round(wall, 1),
        run_dir=str(run),
    )
    return row


def weaver_data_config(model: str, small: bool, max_objects: int) -> dict[str, Any]:
    features = [Variable.parse(s).label for s in ai4hep_config(model, small)["data"]["object_features"]]
    if features != list(FEATURES):
        raise SystemExit(f"ai4hep's object_features {features} no longer match this benchmark's {list(FEATURES)}")
    new_vars = {name: expr for name, expr in FEATURES.values() if expr}
    new_vars["part_mask"] = "ak.ones_like(part_deta)"

    def group(names: list[str], standardise: bool) -> dict[str, Any]:
        # [name]: weaver's automatic standardisation (median, 16-84% half-width, clipped to +-5); [name, None]: raw.
        # weaver keeps one set of preprocessing parameters per variable, so deta and dphi, raw in the points, are raw
        # in the features too, as in weaver's own top-tagging examples (ai4hep standardises them: mean and std).
        return {
            "length": max_objects,
            "pad_mode": "constant",
            "vars": [[n] if standardise and n not in RAW else [n, None] for n in names],
        }

    inputs = {
        "pf_points": group(["part_deta", "part_dphi"], False),
        "pf_features": group([name for name, _ in FEATURES.values()], True),
        "pf_vectors": group(["part_px", "part_py", "part_pz", "part_energy"], False),
        "pf_mask": group(["part_mask"], False),
    }
    return {
        "selection": None,
        "new_variables": new_vars,
        "preprocess": {"method": "auto", "data_fraction": 1.0},  # statistics from all training jets, like ai4hep
        "inputs": {k: inputs[k] for k in NETWORKS[model]["inputs"]},
        "labels": {"type": "simple", "value": ["label_qcd", "label_top"]},  # class index 0 = qcd, 1 = top
        "observers": ["jet_pt"],
    }


def weaver_throughput(log: Path) -> tuple[float, int, int]:
    """(jets/s, training jets, epochs) from weaver's training-epoch lines; evaluation lines are skipped."""
    jets, seconds, epochs, last = 0, 0.0, 0, None
    for line in log.read_text(errors="replace").splitlines():
        m = WEAVER_SPEED.search(line)
        if m:
            last = (int(m[1]), float(m[2]))
        elif "Train AvgLoss" in line and last is not None:
            jets += last[0]
            seconds += last[0] / last[1]
            epochs += 1
            last = None
    if not epochs:
        raise SystemExit(f"no training epoch found in weaver's log {log}")
    return jets / seconds, jets, epochs


def run_weaver(model: str, args: argparse.Namespace, data: Dataset, b: dict[str, Any]) -> dict[str, Any]:
    tag = f"weaver_{model}{'_small' if args.small else ''}"
    run, cfg_dir = args.work / "runs" / tag, args.work / "configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    data_cfg, net_cfg = cfg_dir / f"{tag}_data.yaml", cfg_dir / f"{tag}_net.py"
    for stale in cfg_dir.glob(f"{tag}_data.*.auto.yaml"):  # weaver's cached standardisation, maybe from other data
        stale.unlink()
    data_cfg.write_text(yaml.safe_dump(weaver_data_config(model, args.small, b["max_objects"]), sort_keys=False))
    net = NETWORKS[model]
    net_cfg.write_text(
        NETWORK_TEMPLATE.format(
            params=WEAVER_PARAMS[(model, args.small)], **{k: v for k, v in net.items() if k != "inputs"}
        )
    )
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    steps = data.n_jets["train"] // b["batch_size"]
    files = {split: [str(data.parquet[i]) for i in getattr(data, split)] for split in ("train", "val", "test")}
    cmd = [_exe("weaver"), "--data-train", *files["train"], "--data-val", *files["val"], "--data-test", *files["test"]]
    cmd += ["--data-config", str(data_cfg), "--network-config", str(net_cfg)]
    cmd += ["--network-option", "seed", str(args.seed), "--network-option", "threads", str(args.threads)]
    cmd += ["--model-prefix", str(run / "net"), "--num-epochs", str(b["epochs"]), "--batch-size", str(b["batch_size"])]
    # AdamW with ai4hep's weight decay; cosine decay to 0 over the run (weaver: per step; ai4hep: per epoch)
    cmd += ["--optimizer", "AdamW", "--optimizer-option", "weight_decay", str(WEIGHT_DECAY), "--start-lr", str(b["lr"])]
    cmd += ["--lr-scheduler", "warmup+cos", "--warmup-steps", "0"]
    cmd += ["--steps-per-epoch", str(steps), "--steps-per-epoch-val", "-1"]  # an epoch = the training set; all of val
    cmd += ["--gpus", "", "--num-workers", "0", "--fetch-step", "1"]  # CPU; one fetch holds all of a split's jets
    cmd += ["--predict-output", str(run / "predict.parquet"), "--log-file", str(run / "weaver.log")]
    print(f"{tag}: training ({b['epochs']} epochs) -> {run}", flush=True)
    wall = _run(cmd, run.parent / f"{tag}.log", args.threads)
    pred = ak.from_parquet(run / "predict.parquet")
    score, labels = ak.to_numpy(pred["scores"])[:, 1], ak.to_numpy(pred["_label_"])
    rate, jets, epochs = weaver_throughput(run / "weaver.log")
    params = re.findall(r"ai4hep-bench parameters (\d+)", (run / "weaver.log").read_text(errors="replace"))
    return {
        "framework": "weaver",
        "model": model,
        **metrics(score, labels == 1),
        "train_jets_per_s": round(rate, 1),
        "parameters": int(params[-1]) if params else None,
        "epochs": epochs,
        "train_jets": jets,
        "train_command_wall_s": round(wall, 1),
        "run_dir": str(run),
    }


def metrics(score: np.ndarray, is_signal: np.ndarray) -> dict[str, Any]:
    """Test AUC and 1/eps_B at eps_S = 0.3 with their errors: the same ai4hep.metrics.binary code for both."""
    score, is_signal = np.asarray(score, float), np.asarray(is_signal, bool)
    n_s, n_b = int(is_signal.sum()), int((~is_signal).sum())
    a = auc(score, is_signal)
    rej = rejection_at(score, is_signal, EFF_S)
    return {
        "n_test": len(score),
        "n_signal": n_s,
        "n_background": n_b,
        "auc": a,
        "auc_error": auc_error(a, n_s, n_b),
        "rejection": rej["rejection"] if np.isfinite(rej["rejection"]) else None,
        "rejection_error": rej["error"] if np.isfinite(rej["error"]) else None,
        "rejection_lower_limit": rej.get("lower_limit"),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"| model | framework | parameters | test AUC | 1/eps_B at eps_S={EFF_S} | training jets/s (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["rejection"] is not None:
            rej = f"{r['rejection']:.1f} ± {r['rejection_error']:.1f}"
        else:
            rej = f"> {r['rejection_lower_limit']:.0f} (no background passes)"
        lines.append(
            f"| {r['model']} | {r['framework']} | {r['parameters']:,} | {r['auc']:.4f} ± {r['auc_error']:.4f} | "
            f"{rej} | {r['train_jets_per_s']:.1f} |"
        )
    return "\n".join(lines)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=6000, help="top jets to generate (train 80%%, val 10%%, test 10%%)")
    parser.add_argument("--shard-size", type=int, default=None, help="jets per shard (default jets/10: 10 shards)")
    parser.add_argument("--seed", type=int, default=1, help="data generation and training seed")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="generation workers")
    parser.add_argument("--epochs", type=int, default=None, help="default: the ai4hep config's max_epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the ai4hep config's batch_size")
    parser.add_argument("--lr", type=float, default=None, help="default: the ai4hep config's lr")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads, both frameworks")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--small", action="store_true", help="the *_small ai4hep configs and matching weaver sizes")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "weaver-compare", help="data, configs and runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default WORK/weaver_compare.json)")
    args = parser.parse_args()
    args.work = args.work.resolve()
    out = args.out or args.work / "weaver_compare.json"
    if "weaver" in args.frameworks:
        _exe("weaver")

    start = time.perf_counter()
    data = prepare_data(args)
    rows, budgets = [], {}
    for model in args.models:
        b = budgets[model] = budget(args, model)
        for framework in args.frameworks:
            run = run_ai4hep if framework == "ai4hep" else run_weaver
            row = run(model, args, data, b)
            rows.append(row)
            print(
                f"  {framework} {model}: AUC {row['auc']:.4f} ± {row['auc_error']:.4f}, "
                f"{row['train_jets_per_s']:.1f} training jets/s",
                flush=True,
            )
    md = table(rows)
    print()
    print(md)
    record = {
        "benchmark": "benchmarks/weaver_compare.py",
        "versions": {p: _version(p) for p in ("ai4hep", "weaver-core", "torch", "lightning", "numpy", "awkward")},
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "small": args.small,
        "seed": args.seed,
        "dataset": {
            "name": "top",
            "jets": args.jets,
            "shards": {s: [data.h5[i].name for i in getattr(data, s)] for s in ("train", "val", "test")},
            "jets_per_split": data.n_jets,
        },
        "budget": budgets,
        "optimiser": f"AdamW, weight decay {WEIGHT_DECAY}, cosine decay to 0 (ai4hep per epoch, weaver per step)",
        "throughput": (
            "training jets/s, validation/test/set-up excluded, data loading included. ai4hep: model card "
            "train_jets_per_s (Throughput callback, epoch start to each batch end). weaver: sum of training jets over "
            "the sum of training-loop times from its per-epoch log line 'Processed N entries in total (avg. speed X "
            "entries/s)'"
        ),
        "differences": DIFFERENCES,
        "rows": rows,
        "table": md,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
