"""`ai4hep bench run SUITE.yaml`: every (dataset, config) cell of a suite at one budget, over the suite's seeds, as
records in the store.

Each seed trains and evaluates in a fresh process, so its CPU time and peak memory are its own. A cell's record is
added in one transaction after all its seeds are done: an interrupted run leaves no partial record. Energy comes
from the RAPL counters when they are readable; otherwise it is the documented model CPU seconds x WATTS_PER_CORE.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from ai4hep.bench.record import Cost, Record, Spread
from ai4hep.bench.suite import Budget, load_suite
from ai4hep.errors import UserError
from ai4hep.extras import require
from ai4hep.models import get_model

# Power model when RAPL is unreadable: one fully busy server core draws about 10 W (a 200 W, 20-core package).
WATTS_PER_CORE = 10.0
RAPL = Path("/sys/class/powercap")


def _rapl_uj() -> int | None:
    """Sum of the package energy counters in microjoules, or None when they are absent or unreadable."""
    total, found = 0, False
    for domain in RAPL.glob("intel-rapl:[0-9]*"):
        if ":" in domain.name.split("intel-rapl:")[1]:
            continue  # sub-domains (core, uncore) are inside the package count
        try:
            total += int((domain / "energy_uj").read_text())
            found = True
        except (OSError, ValueError):
            return None
    return total if found else None


def headline_metrics(m: dict) -> tuple[dict[str, tuple[float | None, float | None]], str]:
    """(value, statistical error) per headline metric of an evaluation, and the leaderboard's primary metric: what
    the evaluation's task puts on the leaderboard."""
    from ai4hep.evaluate.tasks import task_of_metrics

    return task_of_metrics(m).leaderboard(m)


def _one_seed(config: Path, run: Path, data: Path, artifacts: Path | None) -> dict:
    """Train, evaluate (which times inference) and keep the artifacts of the first seed: runs in its own process."""
    from ai4hep.evaluate import evaluate
    from ai4hep.run.reader import TrainedRun
    from ai4hep.train.run import train

    energy0, wall0 = _rapl_uj(), time.perf_counter()
    card = train(config, run, progress=False)
    metrics = evaluate(run, None)
    if artifacts is not None:
        _keep_artifacts(run, artifacts, TrainedRun(run))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    energy1 = _rapl_uj()
    wrapped = energy0 is None or energy1 is None or energy1 < energy0  # absent, or a counter wrapped around
    return {
        "card": card,
        "metrics": metrics,
        "infer_jets_per_s": metrics["inference_jets_per_s"],
        "cpu_time_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "wall_time_s": time.perf_counter() - wall0,
        "energy_uj": None if wrapped else energy1 - energy0,
    }


def _keep_artifacts(run: Path, artifacts: Path, tagger) -> None:
    """Plots, model card, and the ONNX file (networks, BDTs, templates) with test inputs and its outputs (for
    `bench compare`)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    for png in (run / "eval").glob("*.png"):
        shutil.copy2(png, artifacts / png.name)
    shutil.copy2(run / "model_card.json", artifacts / "model_card.json")
    shutil.copy2(run / "eval" / "metrics.json", artifacts / "metrics.json")
    import onnxruntime as ort

    from ai4hep.export.onnx import export_onnx

    try:
        result = export_onnx(run, artifacts / "model.onnx")
    except UserError as exc:  # the record stands without an ONNX file; the reason is kept beside it
        (artifacts / "onnx_error.txt").write_text(f"{exc}\n")
        return
    batch = next(iter(tagger.stream(tagger.test_files())))
    inputs = {n: batch[n] for n in result["inputs"]}
    session = ort.InferenceSession(str(artifacts / "model.onnx"), providers=["CPUExecutionProvider"])
    outputs = dict(zip(result["outputs"], session.run(result["outputs"], inputs), strict=True))
    np.savez_compressed(artifacts / "test_inputs.npz", **inputs)
    np.savez_compressed(artifacts / "reference_outputs.npz", **outputs)


def _spread(values: list[float | None], errors: list[float | None]) -> Spread:
    real = [v for v in values if v is not None]
    errs = [e for e in errors if e is not None and np.isfinite(e)]
    return Spread(
        mean=float(np.mean(real)) if real else None,
        std=float(np.std(real, ddof=1)) if len(real) > 1 else (0.0 if real else None),
        values=values,
        error=float(np.mean(errs)) if errs else None,
    )


def _steps_per_epoch(data: dict) -> int:
    """Optimizer steps in one epoch of a config's `data:` block: its training jets (from the shard headers) over
    the batch size, the last batch partial."""
    from ai4hep.data.loader import DataConfig, file_info, split_files

    cfg = DataConfig(**data)
    jets = sum(file_info(f, cfg.objects).n_jets for f in split_files(cfg).train)
    return max(1, -(-jets // cfg.batch_size))


def _cell_config(config_file: Path, data: Path, seed: int, budget: Budget, out: Path) -> Path:
    """The config of one seed of a cell: the budget's data, seed and threads, and for networks its length (epochs or
    optimizer steps) and batch size. With `steps`, max_epochs is ceil(steps / steps per epoch) unless the budget
    gives epochs, so the steps end training and the cosine learning-rate decay (over max_epochs) spans them. Each
    config keeps its learning rate."""
    raw = yaml.safe_load(config_file.read_text())
    raw["seed"] = seed
    raw["data"]["paths"] = [str(data)]
    for key in ("train", "val", "test"):
        raw["data"].pop(key, None)
    trainer = dict(raw.get("trainer") or {})
    if get_model(raw["model"]["name"]).adapter.trains_in_epochs:  # fitted models have no epochs, steps or batches
        if budget.batch_size is not None:
            raw["data"]["batch_size"] = budget.batch_size
        if budget.steps is not None:
            trainer["max_steps"] = budget.steps
        if budget.epochs is not None:
            trainer["max_epochs"] = budget.epochs
        else:
            trainer["max_epochs"] = -(-budget.steps // _steps_per_epoch(raw["data"]))
    if budget.threads is not None:
        trainer["threads"] = budget.threads
    if trainer:
        raw["trainer"] = trainer
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def run_cell(
    suite: str,
    budget: str,
    name: str,
    config_file: Path,
    data: Path,
    dataset_hash: str,
    seeds: list[int],
    limits: Budget,
    work: Path,
) -> Record:
    """All seeds of one (dataset, config) cell -> one record (not yet stored)."""
    from ai4hep import __version__
    from ai4hep.run.card import environment

    record_id = uuid.uuid4().hex
    artifacts = work / "records" / record_id
    results = []
    for k, seed in enumerate(seeds):
        run = work / "runs" / record_id / f"seed{seed}"
        config = _cell_config(config_file, data, seed, limits, run.parent / f"seed{seed}.yaml")
        spawn = multiprocessing.get_context("spawn")  # a fresh process: CPU time and peak RSS are this seed's
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            results.append(pool.submit(_one_seed, config, run, data, artifacts if k == 0 else None).result())
    per_seed = [headline_metrics(r["metrics"]) for r in results]
    primary = per_seed[0][1]
    metrics = {
        key: _spread([s[0][key][0] for s in per_seed], [s[0][key][1] for s in per_seed]) for key in per_seed[0][0]
    }
    cpu = float(np.mean([r["cpu_time_s"] for r in results]))
    energies = [r["energy_uj"] for r in results]
    if all(e is not None for e in energies):
        energy, method = float(np.mean(energies)) / 1e6, "rapl"
    else:
        energy, method = cpu * WATTS_PER_CORE, f"model: cpu seconds x {WATTS_PER_CORE:g} W per core"
    card = results[0]["card"]
    for seed, r in zip(seeds, results, strict=True):
        (artifacts / f"model_card_seed{seed}.json").write_text(json.dumps(r["card"], indent=1, default=str))
    return Record(
        id=record_id,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        suite=suite,
        task=card["dataset"]["name"],
        model=card["model"],
        config_name=name,
        budget=budget,
        seeds=seeds,
        metrics=metrics,
        primary_metric=primary,
        cost=Cost(
            train_jets_per_s=float(np.mean([r["card"]["train_jets_per_s"] for r in results])),
            infer_jets_per_s=float(np.mean([r["infer_jets_per_s"] for r in results])),
            peak_rss_mb=float(max(r["peak_rss_mb"] for r in results)),
            cpu_time_s=cpu,
            wall_time_s=float(np.mean([r["wall_time_s"] for r in results])),
            energy_j=energy,
            energy_method=method,
        ),
        environment=environment(),
        dataset_hash=dataset_hash,
        dataset_card=card["dataset"]["card"],
        config=card["config"],
        artifacts=str(artifacts.resolve()),
        ai4hep_version=__version__,
    )


def run_suite(
    suite_path: Path, budget: str, db: str, work: Path, only: list[str] | None = None, echo=print
) -> list[Record]:
    """Run a suite at one budget and add one record per cell to the store at `db`; returns the records."""
    require("bench", "'ai4hep bench run'")
    from ai4hep.bench.store import RecordStore
    from ai4hep.data.shards import generate

    suite, _, files = load_suite(suite_path)
    if budget not in suite.budgets:
        raise UserError(f"{suite_path}: unknown budget '{budget}'; valid budgets: {', '.join(suite.budgets)}")
    b = suite.budgets[budget]
    if only:  # checked before any work: a name that matches nothing would generate data and add no record
        valid = list(dict.fromkeys(name for task in suite.tasks for name in task.configs))
        unknown = [name for name in only if name not in valid]
        if unknown:
            raise UserError(
                f"--only {', '.join(unknown)} matches no config of {suite_path}; valid names: {', '.join(valid)}"
            )
    records = []
    with RecordStore(db) as store:  # opened first: a newer schema or an unreachable server fails before any work
        for task in suite.tasks:
            if only and not any(name in only for name in task.configs):
                continue  # none of this task's configs is asked for: no data to generate
            data = work / "data" / f"{task.dataset}-{budget}-{b.jets}-{b.shard_size}-{suite.data_seed}"
            summary = generate(
                task.dataset,
                b.jets,
                data,
                seed=suite.data_seed,
                workers=min(2, os.cpu_count() or 1),
                shard_size=b.shard_size,
                show_progress=False,
            )
            for name in task.configs:
                if only and name not in only:
                    continue
                start = time.perf_counter()
                record = run_cell(
                    suite.name,
                    budget,
                    name,
                    files[name],
                    data,
                    summary.dataset_hash,
                    suite.seeds_for(budget),
                    b,
                    work,
                )
                store.add(record)
                records.append(record)
                p = record.metrics[record.primary_metric]
                value = f"{p.mean:.4g} ± {p.std:.2g}" if p.mean is not None else "n/a"
                echo(
                    f"{task.dataset} {name}: {record.primary_metric} {value} over seeds {record.seeds} "
                    f"({time.perf_counter() - start:.0f}s; record {record.id[:8]})"
                )
    return records
