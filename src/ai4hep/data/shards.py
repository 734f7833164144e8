"""Dataset generation as independent shards: worker processes or a Dask cluster, atomic writes, resume.

A dataset of N jets is cut into shards of `shard_size` jets; shard k draws its Pythia seeds from (seed, k, process)
alone, so the arrays do not depend on how many workers ran, in which order, or whether the run was resumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ai4hep import __version__
from ai4hep.atomic import atomic_path
from ai4hep.data import schema
from ai4hep.data.cards import DatasetCard, get_card
from ai4hep.data.generate.detector import PRESETS, DetectorConfig, PileUp, reconstruct
from ai4hep.data.generate.jets import build_arrays, clustering_window
from ai4hep.data.generate.pythia import Generator, pythia_seed
from ai4hep.errors import UserError
from ai4hep.extras import require

MANIFEST = "dataset.json"
MAX_EVENTS_WITHOUT_JET = 20_000


@dataclass(frozen=True)
class ShardTask:
    out_dir: str
    card_name: str
    detector_json: str
    seed: int
    index: int
    n_jets: int

    @property
    def path(self) -> Path:
        return Path(self.out_dir) / f"{self.card_name}-{self.index:05d}.h5"


@dataclass
class ShardResult:
    index: int
    n_jets: int
    n_events: int
    seconds: float
    content_hash: str
    skipped: bool = False
    events_per_process: tuple[int, ...] = ()


def process_quotas(card: DatasetCard, n_jets: int) -> list[int]:
    """Jets per process for a shard: the card's fractions, remainders by largest fraction (deterministic)."""
    fractions = np.array([p.fraction for p in card.processes], dtype=float)
    fractions /= fractions.sum()
    exact = fractions * n_jets
    quotas = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quotas), kind="stable")[: n_jets - quotas.sum()]:
        quotas[i] += 1
    return quotas.tolist()


def shard_sizes(n_jets: int, shard_size: int) -> list[int]:
    full, rest = divmod(n_jets, shard_size)
    return [shard_size] * full + ([rest] if rest else [])


# The default shard size ("auto"): at most 1000 jets (the former fixed default, so large datasets keep their shards
# and hashes), and at least AUTO_SHARDS shards below AUTO_SHARDS x 1000 jets, so that `train` can split by shard.
MAX_AUTO_SHARD_SIZE = 1000
AUTO_SHARDS = 10


def auto_shard_size(n_jets: int) -> int:
    """min(1000, ceil(jets / 10)): e.g. 2000 jets -> 10 shards of 200; a pure function of the jet count, so the shard
    plan and its seeds stay deterministic."""
    return max(1, min(MAX_AUTO_SHARD_SIZE, -(-n_jets // AUTO_SHARDS)))


def folder_shard_size(out_dir: Path, card: DatasetCard, n_jets: int, seed: int, det: DetectorConfig) -> int | None:
    """The shard size of this very dataset (card, jets, seed, detector) already in out_dir, from its manifest or, for
    an unfinished run, its shard files; None when there is none. 'auto' takes it, so a folder made with an explicit
    or the former default shard size resumes instead of being refused."""
    manifest = out_dir / MANIFEST
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text())
            same = (m["n_jets"], m["card_digest"], m["seed"], m["detector"])
            if same == (n_jets, card.digest(), seed, json.loads(det.model_dump_json())):
                return int(m["shard_size"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None
    found: dict[int, int] = {}  # shard index -> jets, for the shards of this dataset
    for path in out_dir.glob(f"{card.name}-*.h5"):
        try:
            with h5py.File(path, "r") as f:
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            if (attrs["card_digest"], str(attrs["detector"]), int(attrs["seed"])) == (
                card.digest(),
                det.model_dump_json(),
                seed,
            ):
                found[int(attrs["shard_index"])] = int(attrs["n_jets"])
        except (OSError, KeyError, ValueError):
            continue
    # a shard before the last holds exactly shard_size jets; the last holds n_jets - index x shard_size
    candidates = set(found.values()) | {(n_jets - m) // k for k, m in found.items() if k and (n_jets - m) % k == 0}
    for size in sorted(c for c in candidates if c > 0):
        plan = shard_sizes(n_jets, size)
        if all(k < len(plan) and plan[k] == m for k, m in found.items()):
            return size
    return None


def _generate_process(
    card: DatasetCard,
    detector: DetectorConfig,
    task: ShardTask,
    p: int,
    quota: int,
    progress: Callable[[int], None] | None,
    stages: dict[str, float] | None = None,
    on_generator: Callable[[int, Generator], None] | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    process = card.processes[p]
    gen = Generator((*card.common_settings, *process.settings), pythia_seed(task.seed, task.index, p))
    if on_generator is not None:
        on_generator(p, gen)
    rng = np.random.default_rng([task.seed, task.index, p, 1])
    pileup = None
    if detector.pileup_mu > 0:
        pileup = PileUp(detector.pileup_mu, pythia_seed(task.seed, task.index, p, 2), card.common_settings)
    pieces: list[dict[str, np.ndarray]] = []
    # Jets per event, kept on the high side so that a batch rarely makes more events than the quota needs (events
    # past the last jet a shard keeps are Pythia time spent for nothing; a fixed guess of 0.5 and a 10% margin made
    # hlf5's and flavour's 300-jet shards generate 1.5x and 4x the events they used): at first the card's per-event
    # cap, an upper bound, then the yield so far plus about one standard deviation, below the cap.
    max_rate = float(card.jets.max_jets_per_event)
    have, events, rate = 0, 0, max_rate
    window = clustering_window(card)
    while have < quota:
        if events >= MAX_EVENTS_WITHOUT_JET and have == 0:
            raise RuntimeError(f"process '{process.name}' gave no selected jet in {events} events; check its card")
        n_events = int(np.clip(np.ceil((quota - have) / max(rate, 0.01)), 4, 200))
        t0 = time.perf_counter()
        batch = gen.next_batch(n_events)
        t1 = time.perf_counter()
        reco = reconstruct(batch, gen, detector, rng, pileup, abs_y_max=window)
        t2 = time.perf_counter()
        arrays = build_arrays(batch, reco, card, p, events, limit=quota - have)
        if stages is not None:
            stages["pythia_batch"] += t1 - t0
            stages["detector"] += t2 - t1
            stages["jets_labels_substructure"] += time.perf_counter() - t2
        events += batch.n_events
        take = min(quota - have, len(arrays["jets"]))
        pieces.append({k: v[:take] for k, v in arrays.items()})
        have += take
        rate = min(max_rate, (have + 1 + np.sqrt(have + 1)) / events)
        if progress and take:
            progress(take)
    return {k: np.concatenate([piece[k] for piece in pieces]) for k in pieces[0]}, events


def generate_shard(task: ShardTask, progress: Callable[[int], None] | None = None) -> ShardResult:
    """Generate one shard and write it atomically. Safe to run in any process or on any Dask worker.

    BLAS is held to one thread: the matrices are tiny (one jet), and OpenBLAS's spinning helper threads would take
    the core of the neighbouring worker."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _generate_shard(task, progress)


def _generate_shard(
    task: ShardTask,
    progress: Callable[[int], None] | None,
    stages: dict[str, float] | None = None,
    on_generator: Callable[[int, Generator], None] | None = None,
) -> ShardResult:
    """With `stages`, the seconds of each step of the event loop (Pythia's init left out) and of the write are added
    to it, and `on_generator(process, generator)` sees each process's generator before its first event:
    benchmarks/generation_rate.py measures this very code against Pythia's bare loop, stepped event by event beside
    it through the generator's `next_event`."""
    start = time.perf_counter()
    card = get_card(task.card_name)
    detector = DetectorConfig.model_validate_json(task.detector_json)
    parts, events = [], []
    for p, quota in enumerate(process_quotas(card, task.n_jets)):
        n = 0
        if quota:
            arrays, n = _generate_process(card, detector, task, p, quota, progress, stages, on_generator)
            parts.append(arrays)
        events.append(n)
    t0 = time.perf_counter()
    merged = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    order = np.random.default_rng([task.seed, task.index, 99]).permutation(task.n_jets)
    merged = {k: v[order] for k, v in merged.items()}
    digest = schema.write_atomic(task.path, merged, shard_attrs(card, detector, task))
    if stages is not None:
        stages["write"] += time.perf_counter() - t0
    return ShardResult(
        task.index, task.n_jets, sum(events), time.perf_counter() - start, digest, events_per_process=tuple(events)
    )


def shard_attrs(card: DatasetCard, detector: DetectorConfig, task: ShardTask) -> dict[str, str | int]:
    return {
        "card": card.to_json(),
        "card_name": card.name,
        "card_version": card.version,
        "card_digest": card.digest(),
        "detector": detector.model_dump_json(),
        "seed": task.seed,
        "shard_index": task.index,
        "n_jets": task.n_jets,
        "ai4hep_version": __version__,
    }


def _existing_result(
    task: ShardTask,
    card: DatasetCard,
    detector: DetectorConfig,
    recorded: dict[str, str] | None = None,
    redo: list[tuple[str, str]] | None = None,
) -> ShardResult | None:
    """A finished shard from an earlier run, or None (to generate). A shard of a different dataset is an error. A
    shard of this dataset is trusted only when its content passes read_shard's checks (the stored content hash,
    every field there, finite values) and matches the hash the manifest recorded (`recorded`, by file name);
    otherwise it is regenerated, which gives back exactly its arrays, and (name, reason) is added to `redo`."""
    path = task.path
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError:
        if redo is not None:
            redo.append((path.name, "not a readable HDF5 file"))
        path.unlink()  # cannot happen with atomic writes, but a damaged file is regenerated, not trusted
        return None
    expected = shard_attrs(card, detector, task)
    for key in ("card_digest", "detector", "seed", "shard_index", "n_jets"):
        got = attrs.get(key)
        got = got.decode() if isinstance(got, bytes) else got
        if str(got) != str(expected[key]):
            raise UserError(
                f"{path} belongs to a different dataset ({key} differs); use another --out folder or delete it"
            )
    try:
        stored = schema.read_shard(path).attrs["content_hash"]
    except UserError as exc:
        reason = str(exc).removeprefix(str(path)).lstrip(": ").split("; ")[0]
    else:
        if recorded is None or recorded.get(path.name, stored) == stored:
            return ShardResult(task.index, task.n_jets, 0, 0.0, str(stored), skipped=True)
        reason = f"content hash differs from the one {MANIFEST} recorded"
    if redo is not None:
        redo.append((path.name, reason))
    return None


def _remove_temporaries(out_dir: Path) -> None:
    for tmp in out_dir.glob(".*.tmp-*"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_dir}: {exc.strerror}; choose a writable --out") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"output folder {out_dir} is not writable; choose a writable --out")
    probe = out_dir / f".probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write into {out_dir}: {exc.strerror}; choose a writable --out") from None


_WORKER_QUEUE: list = []


def _init_worker(queue) -> None:
    _WORKER_QUEUE[:] = [queue]


def _pool_entry(task: ShardTask) -> ShardResult:
    return generate_shard(task, progress=_WORKER_QUEUE[0].put)


def _run_pool(tasks: list[ShardTask], workers: int, on_jets: Callable[[int], None]) -> Iterator[ShardResult]:
    import multiprocessing as mp
    import queue as queue_module

    # fork starts a worker in milliseconds (spawn re-imports everything, ~1 s); Pythia and FastJet hold no threads
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    progress = ctx.Queue()

    def drain() -> None:
        while True:
            try:
                on_jets(progress.get_nowait())
            except queue_module.Empty:
                return

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(progress,))
    try:
        pending = {pool.submit(_pool_entry, task) for task in tasks}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for fut in done:
                yield fut.result()
        drain()
    finally:
        for proc in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks: list[ShardTask], address: str) -> Iterator[ShardResult]:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {address} ({exc}); check --dask") from None
    try:
        futures = client.map(generate_shard, tasks, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()


@dataclass
class GenerateSummary:
    out_dir: Path
    n_jets: int
    n_events: int
    seconds: float
    shards: list[ShardResult]
    dataset_hash: str
    regenerated: list[tuple[str, str]] = field(default_factory=list)  # (file, why) of shards that failed their check
    shard_size: int = 0


def generate(
    name: str,
    n_jets: int,
    out_dir: Path,
    seed: int = 1,
    workers: int = 1,
    shard_size: int | None = None,
    detector: str = "atlas-like",
    pileup_mu: float = 0.0,
    dask_address: str | None = None,
    show_progress: bool = True,
) -> GenerateSummary:
    """Generate (or finish generating) a named dataset into out_dir. shard_size None is 'auto': the shard size of
    this dataset already in out_dir, else auto_shard_size(n_jets)."""
    card = get_card(name)
    if n_jets <= 0:
        raise UserError(f"--jets must be a positive number of jets, got {n_jets}")
    if shard_size is not None and shard_size <= 0:
        raise UserError(f"--shard-size must be a positive number of jets or 'auto', got {shard_size}")
    if workers <= 0:
        raise UserError(f"--workers must be positive, got {workers}")
    if not 0 <= seed < 2**31:
        raise UserError(f"--seed must be between 0 and 2^31-1, got {seed}")
    if detector not in PRESETS:
        raise UserError(f"unknown detector '{detector}'; valid names: {', '.join(PRESETS)}")
    if not pileup_mu >= 0:  # also rejects NaN
        raise UserError(f"--pileup must be a number >= 0, got {pileup_mu}")
    if dask_address:
        require("dask", "'ai4hep data generate --dask'")
    det = PRESETS[detector].model_copy(update={"pileup_mu": float(pileup_mu)})
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    _remove_temporaries(out_dir)
    if shard_size is None:
        shard_size = folder_shard_size(out_dir, card, n_jets, seed, det) or auto_shard_size(n_jets)
    manifest_path = out_dir / MANIFEST
    recorded = None
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        same = (old.get("n_jets"), old.get("card_digest"), old.get("seed"), old.get("shard_size"), old.get("detector"))
        if same != (n_jets, card.digest(), seed, shard_size, json.loads(det.model_dump_json())):
            raise UserError(f"{out_dir} already holds a different dataset; use another --out folder or delete it")
        recorded = {s["file"]: s["content_hash"] for s in old.get("shards", []) if "file" in s}
    tasks = [
        ShardTask(str(out_dir), card.name, det.model_dump_json(), seed, i, size)
        for i, size in enumerate(shard_sizes(n_jets, shard_size))
    ]
    results: dict[int, ShardResult] = {}
    todo = []
    redo: list[tuple[str, str]] = []
    for task in tasks:
        existing = _existing_result(task, card, det, recorded, redo)
        if existing is None:
            todo.append(task)
        else:
            results[task.index] = existing
    from tqdm import tqdm

    start = time.perf_counter()
    bar = tqdm(
        total=n_jets,
        initial=sum(r.n_jets for r in results.values()),
        unit="jet",
        desc=f"{card.name}",
        disable=not show_progress,
        dynamic_ncols=True,
        mininterval=1.0,
    )
    try:
        if dask_address:
            stream = _run_dask(todo, dask_address)
        elif workers == 1 or len(todo) <= 1:
            stream = (generate_shard(task, progress=bar.update) for task in todo)
        else:
            stream = _run_pool(todo, min(workers, len(todo)), bar.update)
        for result in stream:
            if dask_address:
                bar.update(result.n_jets)
            results[result.index] = result
    except BaseException:
        _remove_temporaries(out_dir)
        raise
    finally:
        bar.close()
    ordered = [results[i] for i in range(len(tasks))]
    dataset_hash = _combined_hash([r.content_hash for r in ordered])
    manifest = {
        "name": card.name,
        "card_version": card.version,
        "card_digest": card.digest(),
        "detector": json.loads(det.model_dump_json()),
        "seed": seed,
        "n_jets": n_jets,
        "shard_size": shard_size,
        "shards": [{"file": tasks[r.index].path.name, **asdict(r)} for r in ordered],
        "dataset_hash": dataset_hash,
        "ai4hep_version": __version__,
    }
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    seconds = time.perf_counter() - start
    n_events = sum(r.n_events for r in ordered)
    return GenerateSummary(out_dir, n_jets, n_events, seconds, ordered, dataset_hash, redo, shard_size)


def _combined_hash(hashes: list[str]) -> str:
    import hashlib

    return hashlib.sha256("".join(hashes).encode()).hexdigest()
