"""Generation throughput and pipeline overhead.

For each dataset: jets/s with one worker and with all cores (same shard plan, so the same jets), and the overhead of
the whole ai4hep pipeline (batch extraction, detector, clustering, labels, features, HDF5 write) over Pythia's bare
event loop (`pythia.next()`, same settings, same seeds, same events; Pythia's init, the same in both, excluded).

    python benchmarks/generation_rate.py [--datasets top qg ...] [--jets 400] [--overhead-jets 1000] [--out FILE]

The overhead counts every event the pipeline generated, also those after the shard's last kept jet (it sizes its
batches to waste few: the record gives `events_used`, the events up to each process's last kept jet).
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

import h5py
import numpy as np
from threadpoolctl import threadpool_limits

from ai4hep import __version__
from ai4hep.data.cards import get_card
from ai4hep.data.generate.detector import PRESETS
from ai4hep.data.generate.pythia import Generator, pythia_seed
from ai4hep.data.shards import ShardTask, _generate_shard, generate


class _LockstepBare:
    """Pythia's bare loop, one generator per process with the pipeline's seed, stepped event by event right after
    each of the pipeline's next() calls (through the generator's `next_event`): both sides of the ratio see the same
    event within milliseconds. Stepped batch by batch (~1.5 s apart), two identical bare generators differed by up
    to 30% per batch and 1-3% per shard on this shared machine, as much as the overhead itself; event by event,
    by 0.1-0.3%. Its seconds fall inside the pipeline's timed Pythia step and are taken out of it."""

    def __init__(self, card, seed: int) -> None:
        self.card, self.seed = card, seed
        self.seconds = 0.0
        self.events = 0

    def __call__(self, p: int, gen: Generator) -> None:
        card = self.card
        settings = (*card.common_settings, *card.processes[p].settings)
        bare = Generator(settings, pythia_seed(self.seed, 0, p)).pythia.next  # init excluded, as on the other side
        pipeline = gen.next_event
        clock = time.perf_counter

        def both() -> bool:
            ok = pipeline()
            start = clock()
            bare_ok = bare()
            self.seconds += clock() - start
            self.events += 1
            if bare_ok != ok:
                raise RuntimeError("the bare loop and the pipeline's generator went out of step")
            return ok

        gen.next_event = both


def overhead(name: str, n_jets: int, seed: int, repeats: int = 3) -> dict:
    """Per-event cost of the whole pipeline over Pythia's bare next() loop, same events (same seeds), init excluded
    from both, on one core (BLAS held to one thread, as generate_shard does); the bare loop runs in lockstep with
    the pipeline (see _LockstepBare). The median of `repeats` runs, all of them recorded."""
    card = get_card(name)
    runs = sorted((_overhead_once(card, n_jets, seed) for _ in range(repeats)), key=lambda r: r["overhead_pct"])
    return {**runs[len(runs) // 2], "overhead_runs_pct": [round(r["overhead_pct"], 2) for r in runs]}


def _overhead_once(card, n_jets: int, seed: int) -> dict:
    """One shard made by the production code (shards._generate_shard, its steps timed)."""
    stages = dict.fromkeys(("pythia_batch", "detector", "jets_labels_substructure", "write"), 0.0)
    out = Path(tempfile.mkdtemp(prefix="ai4hep-bench-"))
    task = ShardTask(str(out), card.name, PRESETS["atlas-like"].model_dump_json(), seed, 0, n_jets)
    bare = _LockstepBare(card, seed)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            result = _generate_shard(task, None, stages, on_generator=bare)
        events_used = _events_used(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if bare.events == 0:
        raise SystemExit("the overhead needs the native event-record reader (build it with `make .venv/.installed`)")
    stages["pythia_batch"] -= bare.seconds
    total = sum(stages.values())
    return {
        "events": result.n_events,
        "events_used": events_used,
        "pipeline_s": total,
        "bare_pythia_s": bare.seconds,
        "overhead_pct": 100.0 * (total - bare.seconds) / bare.seconds,
        "stages_s": {k: round(v, 4) for k, v in stages.items()},
    }


def _events_used(out: Path) -> int:
    """Events up to each process's last kept jet: those after it were generated for nothing."""
    (path,) = out.glob("*.h5")
    with h5py.File(path, "r") as f:
        jets = f["jets"].fields(["process", "event"])[:]
    return sum(int(jets["event"][jets["process"] == p].max()) + 1 for p in np.unique(jets["process"]))


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
    parser.add_argument(
        "--overhead-jets", type=int, default=1000, help="jets of the overhead's shard (the CLI's default shard size)"
    )
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
            f"for {ov['events']} events ({ov['events_used']} used): "
            f"overhead {ov['overhead_pct']:+.1f}% (runs {ov['overhead_runs_pct']})",
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
