"""Loader benchmark: jets/s the streaming data module delivers vs jets/s each neural model consumes in training,
and peak memory while streaming a dataset several times larger than the configured budget.

    python benchmarks/loader_throughput.py [--jets 4000] [--copies 12] [--budget-mb 128] [--out FILE.json]

The large dataset is the generated shards linked `--copies` times under new names (the loader reads each copy in
full, so the bytes streamed are real; only generation time is saved). Memory is measured in a child process that
imports the loader but not torch: its peak RSS (VmHWM, reset at start) against the budget. Loader rates are given
reading HDF5 (first epoch: gzip decompression and feature computation) and from the feature cache (`data.cache`,
every later epoch); model rates are forward + backward + AdamW steps on preloaded batches, paper-size networks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OBJ = ["log(pt)", "log(energy)", "log(pt_rel)", "log(e_rel)", "deta", "dphi", "dr", "charge"]
HLF = ["mass", "mass_sd", "tau21", "tau32", "tau1", "tau2", "tau3", "c2", "d2", "n_consts", "log(pt)"]
MODELS = {  # name -> (uses objects, params: the paper-size defaults, as in configs/top_*.yaml)
    "mlp": (False, {"hidden": [64, 64, 64]}),
    "pfn": (True, {}),
    "efn": (True, {}),
    "particlenet": (True, {}),
    "part": (True, {}),
}
EXTRAS = {"mlp": (), "pfn": (), "efn": ("points", "z"), "particlenet": ("points",), "part": ("vectors",)}


def data_config(path: Path, objects: bool, budget_mb: float, batch: int):
    from ai4hep.data.loader import DataConfig

    kw = {"object_features": OBJ, "max_objects": 100} if objects else {"jet_features": HLF}
    return DataConfig(paths=[str(path)], batch_size=batch, memory_mb=budget_mb, **kw)


def make_large(src: Path, dst: Path, copies: int) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    shards = sorted(src.glob("*.h5"))
    for c in range(copies):
        for s in shards:
            link = dst / f"copy{c:03d}-{s.name}"
            if not link.exists():
                os.symlink(s.resolve(), link)
    return sum(s.stat().st_size for s in shards) * copies


def stream_rate(path: Path, model: str, budget_mb: float, batch: int, cache: Path | None = None) -> dict:
    """Jets/s of the loader alone for a model's inputs, plus RSS before and at peak (this process)."""
    from ai4hep.data.inspect import dataset_files
    from ai4hep.data.loader import InputSpec, JetStream, compute_normalisation

    _reset_peak()
    cfg = data_config(path, MODELS[model][0], budget_mb, batch)
    if cache is not None:
        cfg = cfg.model_copy(update={"cache": str(cache)})
    files = dataset_files(path)
    spec = InputSpec(cfg, EXTRAS[model])
    norm = compute_normalisation(JetStream(files[:1], spec, 2), 2000)
    stream = JetStream(files, spec, 2, norm, np.ones(2), shuffle=True, seed=1)
    if cache is not None:  # the first pass fills the cache; time the second, as every epoch after the first
        for _ in stream:
            pass
        stream.set_epoch(1)
    rss0 = _rss_mb()
    n, start = 0, time.perf_counter()
    for b in stream:
        n += len(b["label"])
    seconds = time.perf_counter() - start
    return {
        "jets": n,
        "jets_per_s": n / seconds,
        "chunk_jets": stream.chunk_jets,
        "rss_before_mb": rss0,
        "peak_rss_mb": _status_mb("VmHWM"),
    }


def _reset_peak() -> None:
    """Forget the high-water mark inherited from the parent at fork (Linux: writing 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def model_rate(path: Path, model: str, batch: int, steps: int = 8) -> float:
    """Training jets/s of the model alone (forward, backward, AdamW step) on preloaded real batches."""
    import torch

    from ai4hep.data.inspect import dataset_files
    from ai4hep.data.loader import InputSpec, JetStream, compute_normalisation
    from ai4hep.models import get_model
    from ai4hep.models.kinds.lightning import model_inputs

    entry = get_model(model)
    cfg = data_config(path, MODELS[model][0], 256, batch)
    files = dataset_files(path)[:2]
    spec = InputSpec(cfg, entry.extras)
    norm = compute_normalisation(JetStream(files, spec, 2), 2000)
    batches = [
        {k: torch.from_numpy(v) for k, v in b.items()}
        for b, _ in zip(JetStream(files, spec, 2, norm, drop_last=True), range(steps + 2), strict=False)
    ]
    torch.manual_seed(0)
    net = entry.cls(len(cfg.jet_features), len(cfg.object_features), 2, entry.parse_params(MODELS[model][1]))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def step(b: dict) -> None:
        loss = torch.nn.functional.cross_entropy(net(**model_inputs(net, b)), b["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    for b in batches[:2]:  # warm-up
        step(b)
    start = time.perf_counter()
    for b in batches[2:]:
        step(b)
    return batch * len(batches[2:]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-data"))
    parser.add_argument("--jets", type=int, default=4000)
    parser.add_argument("--copies", type=int, default=12)
    parser.add_argument("--budget-mb", type=float, default=128.0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # memory run, in a fresh process without torch
        print(json.dumps(stream_rate(Path(args.child[0]), args.child[1], args.budget_mb, args.batch)))
        return
    import torch

    from ai4hep.data.shards import generate

    torch.set_num_threads(os.cpu_count() or 1)
    base = args.work / f"top-{args.jets}"
    if not (base / "dataset.json").exists():
        generate("top", args.jets, base, seed=7, workers=os.cpu_count() or 1, shard_size=500, show_progress=True)
    large = args.work / f"top-{args.jets}-x{args.copies}"
    nbytes = make_large(base, large, args.copies)
    raw_mb = args.copies * sum(_raw_bytes(p) for p in sorted(base.glob("*.h5"))) / 2**20
    rows = []
    cache = args.work / "feature-cache"
    shutil.rmtree(cache, ignore_errors=True)
    for model in MODELS:
        cold = stream_rate(base, model, 256, args.batch)["jets_per_s"]
        warm = stream_rate(base, model, 256, args.batch, cache)["jets_per_s"]
        consumes = model_rate(base, model, args.batch)
        rows.append(
            {
                "model": model,
                "loader_hdf5_jets_per_s": cold,
                "loader_cached_jets_per_s": warm,
                "model_jets_per_s": consumes,
            }
        )
        print(
            f"{model:<12} loader from HDF5 {cold:9.0f} jets/s ({cold / consumes:6.1f}x), from the feature cache "
            f"{warm:9.0f} jets/s ({warm / consumes:6.1f}x) | model trains {consumes:8.0f} jets/s"
        )
    shutil.rmtree(cache, ignore_errors=True)
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(large),
            "particlenet",
            "--budget-mb",
            str(args.budget_mb),
            "--batch",
            str(args.batch),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    growth = mem["peak_rss_mb"] - mem["rss_before_mb"]
    print(
        f"streamed {mem['jets']} jets ({raw_mb:.0f} MB of arrays, {nbytes / 2**20:.0f} MB on disk) with a "
        f"{args.budget_mb:.0f} MB budget: peak RSS of the whole process {mem['peak_rss_mb']:.0f} MB "
        f"({growth:.0f} MB above the {mem['rss_before_mb']:.0f} MB before streaming); {mem['jets_per_s']:.0f} jets/s"
    )
    fastest = max(rows[1:], key=lambda r: r["model_jets_per_s"])
    record = {
        "cores": os.cpu_count(),
        "batch": args.batch,
        "rows": rows,
        "fastest_particle_model": fastest["model"],
        "memory": {**mem, "budget_mb": args.budget_mb, "dataset_raw_mb": raw_mb, "dataset_disk_mb": nbytes / 2**20},
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2))


def _raw_bytes(path: Path) -> int:
    import h5py

    with h5py.File(path) as f:
        return sum(f[k].size * f[k].dtype.itemsize for k in f)


if __name__ == "__main__":
    main()
