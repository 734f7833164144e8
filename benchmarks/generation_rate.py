"""Generation throughput and pipeline overhead.

For each dataset: jets/s with one worker and with all cores (same shard plan, so the same jets) beside the speed-up of
Pythia's bare loop over the same shards, events and cores (the machine's ceiling for the pipeline's), and the overhead
of the whole ai4hep pipeline (batch extraction, detector, clustering, labels, features, HDF5 write) over Pythia's bare
event loop (`pythia.next()`, same settings, same seeds, same events; Pythia's init, the same in both, excluded).

    python benchmarks/generation_rate.py [--datasets top qg ...] [--jets 400] [--overhead-jets 1000] [--repeats 3]
        [--overhead-repeats 5] [--out FILE]

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
    by 0.1-0.3%. Its seconds fall inside the pipeline's timed Pythia step and are taken out of it.

    Whichever generator runs first after the pipeline's own work (reading the record, the batch's steps) finds the
    caches cold: always the pipeline first, its next() measured 0.8% slower than the bare one on the same events and
    its record read (right after the bare event) colder than in production; always the bare one first, the reverse
    (the bare next() 0.1% slower). The order alternates event by event, so the two sides share that cost.

    `seconds` holds the bare loop's next() calls; `outside_pipeline` everything the stepping adds to the pipeline's
    Pythia step (the bare calls and this wrapper's own bookkeeping, ~10 us per event with cold caches, 0.1% of
    `flavour`): the pipeline is charged only for its own next(), its record read and its event loop."""

    def __init__(self, card, seed: int) -> None:
        self.card, self.seed = card, seed
        self.seconds = 0.0
        self.outside_pipeline = 0.0
        self.events = 0

    def __call__(self, p: int, gen: Generator) -> None:
        card = self.card
        settings = (*card.common_settings, *card.processes[p].settings)
        bare = Generator(settings, pythia_seed(self.seed, 0, p)).pythia.next  # init excluded, as on the other side
        pipeline = gen.next_event
        clock = time.perf_counter

        def both() -> bool:
            entered = clock()
            pipeline_first = self.events % 2 == 0
            if pipeline_first:
                ok = pipeline()
                own = clock() - entered
            start = clock()
            bare_ok = bare()
            done = clock()
            self.seconds += done - start
            if not pipeline_first:
                ok = pipeline()
                own = clock() - done
            self.events += 1
            if bare_ok != ok:
                raise RuntimeError("the bare loop and the pipeline's generator went out of step")
            self.outside_pipeline += clock() - entered - own
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
    stages["pythia_batch"] -= bare.outside_pipeline
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


def throughput(name: str, n_jets: int, workers: int, seed: int) -> tuple[float, list[tuple[int, ...]]]:
    """Jets/s of `ai4hep data generate` (8 shards, Pythia's init included), and the events each shard generated
    per process (for the bare loop's run of the same shard plan)."""
    out = Path(tempfile.mkdtemp(prefix="ai4hep-bench-"))
    try:
        start = time.perf_counter()
        shard = max(1, n_jets // 8)
        summary = generate(name, n_jets, out, seed=seed, workers=workers, shard_size=shard, show_progress=False)
        return n_jets / (time.perf_counter() - start), [r.events_per_process for r in summary.shards]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _bare_shard(job: tuple[str, int, int, tuple[int, ...]]) -> None:
    """Pythia's bare loop for one shard of the plan: each process's generator with the pipeline's seed (init
    included, as in `generate`), next() for as many events as the pipeline generated."""
    name, seed, index, events = job
    card = get_card(name)
    for p, n_events in enumerate(events):
        if n_events:
            settings = (*card.common_settings, *card.processes[p].settings)
            nxt = Generator(settings, pythia_seed(seed, index, p)).pythia.next
            for _ in range(n_events):
                nxt()


def bare_seconds(name: str, seed: int, plan: list[tuple[int, ...]], workers: int) -> float:
    """Wall seconds of the bare loop over the shard plan, in a pool of `workers` forked processes as `generate`
    runs its shards: the speed-up Pythia itself gets from the cores, the ceiling of the pipeline's."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(name, seed, k, events) for k, events in enumerate(plan)]
    start = time.perf_counter()
    if workers == 1:
        for job in jobs:
            _bare_shard(job)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            list(pool.map(_bare_shard, jobs))
    return time.perf_counter() - start


def scaling(name: str, n_jets: int, cores: int, seed: int, repeats: int) -> dict:
    """Throughput on one core and on `cores`, alternated `repeats` times (the machine's speed drifts by 10-20%
    over minutes here), with the bare loop's over the same shard plan beside each pair; medians. Every other pair
    runs the many-core side first, so that a drift across a pair favours neither side. (The shard plan, the events
    of each shard, is the same for any number of workers.)"""
    one, many, bare_one, bare_many = [], [], [], []
    for k in range(repeats):
        order = (1, cores) if k % 2 == 0 else (cores, 1)
        rates = {}
        for workers in order:
            rates[workers], plan = throughput(name, n_jets, workers, seed)
        bare = {workers: bare_seconds(name, seed, plan, workers) for workers in order}
        one.append(rates[1])
        many.append(rates[cores])
        bare_one.append(bare[1])
        bare_many.append(bare[cores])
    speedups = [m / o for m, o in zip(many, one, strict=True)]
    bare_speedups = [o / m for o, m in zip(bare_one, bare_many, strict=True)]
    return {
        "jets_per_s_1_core": float(np.median(one)),
        f"jets_per_s_{cores}_cores": float(np.median(many)),
        "speedup": float(np.median(speedups)),
        "speedup_runs": [round(x, 3) for x in speedups],
        "bare_pythia_speedup": float(np.median(bare_speedups)),
        "bare_pythia_speedup_runs": [round(x, 3) for x in bare_speedups],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["top", "qg", "jetclass", "flavour", "hlf5"])
    parser.add_argument("--jets", type=int, default=400, help="jets per throughput run")
    parser.add_argument(
        "--overhead-jets", type=int, default=1000, help="jets of the overhead's shard (the CLI's default shard size)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (medians are reported)")
    parser.add_argument("--overhead-repeats", type=int, default=None, help="runs of the overhead (default: --repeats)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for name in args.datasets:
        sc = scaling(name, args.jets, cores, args.seed, args.repeats)
        ov = overhead(name, args.overhead_jets, args.seed + 1, args.overhead_repeats or args.repeats)
        rows.append({"dataset": name, **sc, **ov})
        one, many = sc["jets_per_s_1_core"], sc[f"jets_per_s_{cores}_cores"]
        print(
            f"{name:<9} 1 core {one:7.1f} jets/s | {cores} cores {many:7.1f} jets/s ({sc['speedup']:.2f}x, runs "
            f"{sc['speedup_runs']}; bare Pythia {sc['bare_pythia_speedup']:.2f}x) | "
            f"pipeline {ov['pipeline_s']:.2f}s vs bare Pythia {ov['bare_pythia_s']:.2f}s "
            f"for {ov['events']} events ({ov['events_used']} used): "
            f"overhead {ov['overhead_pct']:+.1f}% (runs {ov['overhead_runs_pct']})",
            flush=True,
        )
        if args.out:  # after every dataset: a long run that stops keeps what it measured
            record = {
                "ai4hep_version": __version__,
                "cpu": platform.processor() or platform.machine(),
                "cores": cores,
                "jets": args.jets,
                "overhead_jets": args.overhead_jets,
                "repeats": args.repeats,
                "overhead_repeats": args.overhead_repeats or args.repeats,
                "rows": rows,
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
