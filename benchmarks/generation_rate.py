"""Generation throughput and pipeline overhead.

For each dataset: jets/s with one worker and with all cores (same shard plan, so the same jets), and the overhead of
the whole ai4hep pipeline (batch extraction, detector, clustering, labels, features, HDF5 write) over Pythia's bare
event loop (`pythia.next()`, same settings, same seeds, same events; Pythia's init, the same in both, excluded).

    python benchmarks/generation_rate.py [--datasets top qg ...] [--jets 400] [--out docs/benchmarks/generation.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from ai4hep import __version__
from ai4hep.data.cards import get_card
from ai4hep.data.generate.detector import PRESETS
from ai4hep.data.generate.pythia import Generator, pythia_seed
from ai4hep.data.shards import ShardTask, _generate_shard, generate


def _bare_loop(card, p: int, seed: int, n_events: int) -> float:
    gen = Generator((*card.common_settings, *card.processes[p].settings), pythia_seed(seed, 0, p))
    pythia = gen.pythia
    start = time.perf_counter()
    for _ in range(n_events):
        pythia.next()
    return time.perf_counter() - start


def overhead(name: str, n_jets: int, seed: int, repeats: int = 4) -> dict:
    """Per-event cost of the whole pipeline over Pythia's bare next() loop, same events (same seeds), init excluded
    from both, on one core (BLAS held to one thread, as generate_shard does). The machine's speed drifts by a few
    per cent within minutes, as much as the overhead itself, so the two are run `repeats` times in ABBA order
    (pipeline first on even runs, bare loop first on odd ones) and the median run is reported with all of them."""
    card = get_card(name)
    runs = [_overhead_once(card, n_jets, seed, bare_first=bool(r % 2)) for r in range(repeats)]
    ranked = sorted(runs, key=lambda r: r["overhead_pct"])
    median = (
        ranked[(len(ranked) - 1) // 2]
        if len(ranked) % 2
        else _mean_of(ranked[len(ranked) // 2 - 1 : len(ranked) // 2 + 1])
    )
    return {**median, "overhead_runs_pct": [round(r["overhead_pct"], 2) for r in runs]}


def _mean_of(pair: list[dict]) -> dict:
    """The middle of two runs (the median of an even number): their times averaged."""
    a, b = pair
    pipeline = (a["pipeline_s"] + b["pipeline_s"]) / 2
    bare = (a["bare_pythia_s"] + b["bare_pythia_s"]) / 2
    return {
        "events": a["events"],
        "pipeline_s": pipeline,
        "bare_pythia_s": bare,
        "overhead_pct": 100.0 * (pipeline - bare) / bare,
        "stages_s": {k: round((a["stages_s"][k] + b["stages_s"][k]) / 2, 4) for k in a["stages_s"]},
    }


def _overhead_once(card, n_jets: int, seed: int, bare_first: bool) -> dict:
    """One shard made by the production code (shards._generate_shard, its steps timed), and Pythia's bare loop over
    the same events of each process, in the order asked."""
    stages = dict.fromkeys(("pythia_batch", "detector", "jets_labels_substructure", "write"), 0.0)
    out = Path(tempfile.mkdtemp(prefix="ai4hep-bench-"))
    task = ShardTask(str(out), card.name, PRESETS["atlas-like"].model_dump_json(), seed, 0, n_jets)
    # the events per process are those of the shard: known from an earlier run (or a dry run) when the bare loop goes
    # first
    events = _events_per_process(card, seed, n_jets) if bare_first else None
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            bare = _bare(card, seed, events) if bare_first else 0.0
            result = _generate_shard(task, None, stages)
            if bare_first and tuple(events) != tuple(result.events_per_process):
                raise RuntimeError("the shard used other events than its dry run")
            if not bare_first:
                bare = _bare(card, seed, result.events_per_process)
                _EVENTS_CACHE[(card.name, seed, n_jets)] = tuple(result.events_per_process)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    total = sum(stages.values())
    return {
        "events": result.n_events,
        "pipeline_s": total,
        "bare_pythia_s": bare,
        "overhead_pct": 100.0 * (total - bare) / bare,
        "stages_s": {k: round(v, 4) for k, v in stages.items()},
    }


def _bare(card, seed: int, events_per_process) -> float:
    return sum(_bare_loop(card, p, seed, n) for p, n in enumerate(events_per_process) if n)


_EVENTS_CACHE: dict[tuple[str, int, int], tuple[int, ...]] = {}


def _events_per_process(card, seed: int, n_jets: int) -> tuple[int, ...]:
    key = (card.name, seed, n_jets)
    if key not in _EVENTS_CACHE:
        out = Path(tempfile.mkdtemp(prefix="ai4hep-bench-"))
        try:
            task = ShardTask(str(out), card.name, PRESETS["atlas-like"].model_dump_json(), seed, 0, n_jets)
            _EVENTS_CACHE[key] = tuple(_generate_shard(task, None).events_per_process)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return _EVENTS_CACHE[key]


def throughput(name: str, n_jets: int, workers: int, seed: int) -> float:
    out = Path(tempfile.mkdtemp(prefix="ai4hep-bench-"))
    try:
        shard = max(1, n_jets // 8)
        start = time.perf_counter()
        generate(name, n_jets, out, seed=seed, workers=workers, shard_size=shard, show_progress=False)
        return n_jets / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["top", "qg", "jetclass", "flavour", "hlf5"])
    parser.add_argument("--jets", type=int, default=400, help="jets per throughput run")
    parser.add_argument("--overhead-jets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for name in args.datasets:
        one = throughput(name, args.jets, 1, args.seed)
        many = throughput(name, args.jets, cores, args.seed)
        ov = overhead(name, args.overhead_jets, args.seed + 1)
        row = {
            "dataset": name,
            "jets_per_s_1_core": one,
            f"jets_per_s_{cores}_cores": many,
            "speedup": many / one,
            **ov,
        }
        rows.append(row)
        print(
            f"{name:<9} 1 core {one:7.1f} jets/s | {cores} cores {many:7.1f} jets/s ({many / one:.2f}x) | "
            f"pipeline {ov['pipeline_s']:.2f}s vs bare Pythia {ov['bare_pythia_s']:.2f}s "
            f"for {ov['events']} events: overhead {ov['overhead_pct']:+.1f}% (runs {ov['overhead_runs_pct']})",
            flush=True,
        )
    record = {
        "ai4hep_version": __version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": cores,
        "jets": args.jets,
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
