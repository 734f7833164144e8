"""ai4hep's inference server against in-process onnxruntime, MLServer and KServe, on loopback, with one client program.

Every server runs the same ONNX file, written by `ai4hep export triton` from one training run, with onnxruntime's
default threads: ai4hep through `ai4hep serve` on that repository, MLServer and KServe through the small custom
runtimes in benchmarks/peers/ (neither ships an ONNX runtime), inside their own virtualenvs made by
benchmarks/peers/setup.sh. Each server is started as a subprocess, polled until ready, loaded, then stopped.

The load comes from one client code path, the official tritonclient: gRPC with raw binary tensors for every server,
and HTTP with the binary tensor extension where the server accepts it (ai4hep, KServe) or JSON where it does not
(MLServer). Clients are separate processes (forked), each with its own connection, each cycling through prepared
requests built from real test jets of the run's own test split. The in-process row runs the same loop around
`session.run` (threads for several clients). A cell is: warm-up, then all clients start together and each sends
requests back to back for --duration seconds (and at least --min-requests); requests/s is all answers over the time
from the common start to the last answer, jets/s is requests/s times the batch size, latencies are per request as
the client sees it. Every server's first answer is checked against in-process onnxruntime on the same jets.

The client shares the machine's cores with the server, as on the 2-core machine the docs' numbers come from.
At batch 1 a fixed-reply server (benchmarks/peers/fixed_reply.py: same libraries as ai4hep, no model) gives the
ceiling that the protocol and this client leave to any Python server.

    benchmarks/peers/setup.sh                                           # once: the peers' virtualenvs
    python benchmarks/serving_compare.py --out docs/benchmarks/serving_compare.json
    python benchmarks/serving_compare.py --quick                        # smoke run: short cells, no JSON

Data, runs, repositories and logs go under --work (default bench-data/serving); existing ones are reused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from serving_load import Cell, Result, run_cell

REPO = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(__file__).resolve().parent / "peers"
AI4HEP = [str(Path(sys.executable).with_name("ai4hep"))]  # the CLI of the environment running this script
POOL_JETS = 512
# The models: training config, dataset and how much of it; quality does not matter for throughput.
MODELS = {
    "mlp": {"config": "configs/hlf5_mlp.yaml", "dataset": "hlf5", "jets": 3000, "shard": 300, "epochs": 3},
    "part": {"config": "configs/top_part.yaml", "dataset": "top", "jets": 3000, "shard": 300, "epochs": 1},
}
# Protocol and tensor encoding each server is measured with (see the module docstring).
PROTOCOLS = {
    "ai4hep": [("grpc", "binary"), ("http", "binary")],
    "mlserver": [("grpc", "binary"), ("http", "json")],
    "kserve": [("grpc", "binary"), ("http", "binary")],
    "onnxruntime": [("in-process", "numpy")],
    "fixed-reply": [("grpc", "binary"), ("http", "binary")],
}
# fixed-reply (benchmarks/peers/fixed_reply.py) runs no model: the ceiling of a Python server on grpc_wire and http_wire
# with this client on this machine, measured at batch 1 only.
SERVERS = ("ai4hep", "onnxruntime", "mlserver", "kserve", "fixed-reply")


# ---------------------------------------------------------------------------------------------------------------------
# Preparation: data, runs, ONNX files, the ai4hep repository, the jet pools


def run_cmd(cmd: list[str], log: Path) -> None:
    """Run a preparation step, its output to a log; a failure stops the benchmark with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print("  $", " ".join(str(c) for c in cmd), flush=True)
    with open(log, "ab") as f:
        rc = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, cwd=REPO).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        sys.exit(f"failed ({rc}): {' '.join(map(str, cmd))}\n" + "\n".join(tail))


def prepare_model(name: str, work: Path, part_config: str | None) -> dict:
    """Generate the data, train the run and export it into ai4hep's repository (each step only if its output is
    missing). Every server then runs that very ONNX file, REPOSITORY/NAME/1/model.onnx."""
    spec = dict(MODELS[name])
    if name == "part" and part_config:
        spec["config"] = part_config
    data = work / "data" / f"{spec['dataset']}-{spec['jets']}"
    run, repo, logs = work / "runs" / name, work / "repository", work / "logs"
    if not data.exists() or not any(data.glob("*.h5")):
        cmd = ["data", "generate", spec["dataset"], "--jets", spec["jets"], "--out", data, "--workers", 2]
        run_cmd([*AI4HEP, *cmd, "--seed", 1, "--shard-size", spec["shard"]], logs / f"generate-{name}.log")
    if not (run / "model_card.json").exists():
        cfg = yaml.safe_load((REPO / spec["config"]).read_text())
        cfg["data"]["paths"] = [str(data)]
        cfg["trainer"]["max_epochs"] = spec["epochs"]
        config = work / "configs" / f"{name}.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        run_cmd([*AI4HEP, "train", config, "--out", run, "--no-progress"], logs / f"train-{name}.log")
    for variant, options in ai4hep_variants(name).items():
        if not (repo / variant / "1" / "model.onnx").exists():
            cmd = ["export", "triton", run, "--repository", repo, "--name", variant, *options]
            run_cmd([*AI4HEP, *cmd], logs / f"export-triton-{variant}.log")
    return {
        "config": spec["config"],
        "data": str(data),
        "run": str(run),
        "onnx": str(repo / name / "1" / "model.onnx"),
        "train_epochs": spec["epochs"],
        "jets_generated": spec["jets"],
        "ai4hep_models": {v: " ".join(o) or "defaults" for v, o in ai4hep_variants(name).items()},
    }


def ai4hep_variants(name: str) -> dict[str, list[str]]:
    """Model names in ai4hep's repository and their `export triton` options (else the defaults: max_batch_size
        1024, dynamic batching with a 100 us window). ParT caps batches at 256 jets, so that a batch-256 request runs
        alone as in the in-process row. Each model also gets a copy without dynamic batching (NAME_nobatch), measured at
    batch 1: the batching target, and what the batcher's queue delay costs a lone client."""
    if name == "mlp":
        return {"mlp": [], "mlp_nobatch": ["--no-dynamic-batching"]}
    return {"part": ["--max-batch-size", "256"], "part_nobatch": ["--max-batch-size", "256", "--no-dynamic-batching"]}


def onnx_outputs(path: str) -> list[str]:
    import onnxruntime as ort

    return [o.name for o in ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_outputs()]


def prepare_pool(name: str, info: dict, work: Path) -> Path:
    """Up to POOL_JETS real test jets of the run's test split, padded to max_objects (so requests can be batched
    together), with in-process onnxruntime's outputs for them as the reference every server must reproduce."""
    import onnxruntime as ort

    from ai4hep.atomic import atomic_path
    from ai4hep.run import TrainedRun

    path = work / "pools" / f"{name}.npz"
    if path.exists():
        return path
    tagger = TrainedRun(Path(info["run"]))
    tagger.spec.cfg.trim = False
    session = ort.InferenceSession(info["onnx"], providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    have = 0
    for batch in tagger.stream(tagger.test_files()):
        for n in names:
            parts[n].append(batch[n])
        have += len(batch[names[0]])
        if have >= POOL_JETS:
            break
    arrays = {n: np.ascontiguousarray(np.concatenate(v)[:POOL_JETS]) for n, v in parts.items()}
    ref = np.concatenate(
        [
            session.run(None, {n: a[i : i + 64] for n, a in arrays.items()})[0]
            for i in range(0, len(arrays[names[0]]), 64)
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, __ref__=ref, **arrays)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Server:
    """A server subprocess in its own session (stopped by its own pid), with its log in the work folder."""

    def __init__(self, name: str, cmd: list[str], http: int, grpc: int, log: Path, env: dict | None = None) -> None:
        self.name, self.http, self.grpc = name, http, grpc
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(c) for c in cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def url(self, protocol: str) -> str:
        return f"127.0.0.1:{self.grpc if protocol == 'grpc' else self.http}"

    def wait_ready(self, models: list[str], timeout: float = 180.0) -> None:
        base = f"http://127.0.0.1:{self.http}/v2"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _http_ok(f"{base}/health/ready") and all(_http_ok(f"{base}/models/{m}/ready") for m in models):
                return
            time.sleep(0.5)
        self.stop()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{self.name} did not become ready (log {self.log}):\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue


def start_ai4hep(repo: Path, work: Path) -> Server:
    http, grpc = free_port(), free_port()
    cmd = [*AI4HEP, "serve", "--repository", repo, "--host", "127.0.0.1", "--http-port", http, "--grpc-port", grpc]
    return Server("ai4hep", cmd, http, grpc, work / "logs" / "serve-ai4hep.log")


def start_mlserver(onnx: dict[str, str], peers: Path, work: Path, workers: int) -> Server:
    """MLServer reads settings.json and one model-settings.json per model folder; our runtime comes off PYTHONPATH."""
    http, grpc, metrics = free_port(), free_port(), free_port()
    root = work / "mlserver"
    shutil.rmtree(root, ignore_errors=True)  # only this run's models
    root.mkdir(parents=True)
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": workers,
        "load_models_at_startup": True,
        "model_repository_root": str(root),
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=1))
    for name, path in onnx.items():
        (root / name).mkdir(exist_ok=True)
        uri = str(Path(path).resolve())
        model = {"name": name, "implementation": "mlserver_onnx.OnnxModel", "parameters": {"uri": uri}}
        (root / name / "model-settings.json").write_text(json.dumps(model, indent=1))
    cmd = [peers / "mlserver-venv" / "bin" / "mlserver", "start", root]
    return Server("mlserver", cmd, http, grpc, work / "logs" / "serve-mlserver.log", {"PYTHONPATH": str(PEERS_DIR)})


def start_kserve(onnx: dict[str, str], peers: Path, work: Path) -> Server:
    """KServe binds 0.0.0.0 / [::] (hard-coded in 0.21); the clients still only use 127.0.0.1."""
    http, grpc = free_port(), free_port()
    models = [a for name, path in onnx.items() for a in ("--model", f"{name}={Path(path).resolve()}")]
    cmd = [
        peers / "kserve-venv" / "bin" / "python",
        PEERS_DIR / "kserve_onnx.py",
        *models,
        "--http_port",
        http,
        "--grpc_port",
        grpc,
    ]
    return Server("kserve", cmd, http, grpc, work / "logs" / "serve-kserve.log")


def start_fixed_reply(pools: dict[str, str], outputs: dict[str, str], work: Path) -> Server:
    http, grpc = free_port(), free_port()
    cmd = [sys.executable, PEERS_DIR / "fixed_reply.py", "--http-port", http, "--grpc-port", grpc]
    cmd += [a for m, pool in pools.items() for a in ("--pool", f"{m}={pool}:{outputs[m]}")]
    return Server("fixed-reply", cmd, http, grpc, work / "logs" / "serve-fixed-reply.log")


# ---------------------------------------------------------------------------------------------------------------------
# Report


def num(x: float) -> str:
    """Three significant figures at most, thousands separated."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def fmt_row(r: Result) -> str:
    c = r.cell
    proto = c.protocol if c.protocol == "in-process" else f"{c.protocol} ({c.encoding})"
    if r.error:
        return f"| {c.model} | {c.batch} | {c.clients} | {c.server} | {proto} | error: {r.error} | | | | |"
    return (
        f"| {c.model} | {c.batch} | {c.clients} | {c.server} | {proto} | {num(r.requests_per_s)} | "
        f"{num(r.jets_per_s)} | {num(r.p50_ms)} | {num(r.p99_ms)} | {r.requests} |"
    )


def table(results: list[Result]) -> str:
    """One row per model, batch size, server and protocol; 1 and 8 clients side by side (the docs' table)."""
    rows: dict[tuple, dict[int, Result]] = {}
    for r in results:
        c = r.cell
        key = (c.model.removesuffix("_nobatch"), c.batch, c.server, c.model, c.protocol, c.encoding)
        rows.setdefault(key, {})[c.clients] = r
    n_clients = sorted({r.cell.clients for r in results})
    head = "| model | batch | server | protocol |" + "".join(
        f" {n} client{'s' * (n > 1)}: req/s | jets/s | p50 ms | p99 ms |" for n in n_clients
    )
    lines = [head, "|" + "---|" * (4 + 4 * len(n_clients))]
    for (base, batch, server, model, protocol, encoding), by_clients in sorted(
        rows.items(), key=lambda kv: (list(MODELS).index(kv[0][0]), kv[0][1], SERVERS.index(kv[0][2]), kv[0][3])
    ):
        name = server if model == base else f"{server}, no dynamic batching"
        proto = protocol if protocol == "in-process" else f"{protocol} ({encoding})"
        cells = []
        for n in n_clients:
            r = by_clients.get(n)
            if r is None:
                cells += [""] * 4
            elif r.error:
                cells += [f"error: {r.error}", "", "", ""]
            else:
                cells += [num(r.requests_per_s), num(r.jets_per_s), num(r.p50_ms), num(r.p99_ms)]
        lines.append(f"| {base} | {batch} | {name} | {proto} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def key_of(cell: Cell) -> tuple:
    return (cell.server, cell.model, cell.protocol, cell.batch, cell.clients)


def median(results: list[Result]) -> Result:
    """The round with the median requests/s (an error if any round failed); extra holds every round's rate."""
    bad = [r for r in results if r.error]
    if bad:
        return bad[0]
    ordered = sorted(results, key=lambda r: r.requests_per_s)
    best = ordered[(len(ordered) - 1) // 2]
    if len(results) > 1:
        best.extra["rounds_requests_per_s"] = [round(r.requests_per_s, 3) for r in results]
    return best


def _find(results: list[Result], **kw) -> Result | None:
    for r in results:
        if not r.error and all(getattr(r.cell, k) == v for k, v in kw.items()):
            return r
    return None


def _verdict(target: str, r: Result, other: Result, label: str, per_s: str, threshold: float) -> dict:
    ours, theirs = getattr(r, per_s), getattr(other, per_s)
    ratio = ours / theirs
    c = r.cell
    return {
        "target": target,
        "model": c.model,
        "protocol": c.protocol,
        "clients": c.clients,
        "peer": label,
        "ai4hep": round(ours, 1),
        "other": round(theirs, 1),
        "ratio": round(ratio, 3),
        "pass": ratio >= threshold,
    }


def targets(results: list[Result]) -> list[dict]:
    """The issue's three targets, one verdict per comparable pair of cells. ai4hep's rows are its default export
    (dynamic batching) and, where measured, the same model without dynamic batching (NAME_nobatch)."""
    out = []
    for r in results:
        c = r.cell
        if r.error or c.server != "ai4hep":
            continue
        base = c.model.removesuffix("_nobatch")
        if c.batch == 1:
            for peer in ("mlserver", "kserve"):
                p = _find(results, server=peer, model=base, protocol=c.protocol, batch=1, clients=c.clients)
                if p:
                    v = _verdict("batch 1: >= 2x the peer's requests/s", r, p, peer, "requests_per_s", 2.0)
                    fixed = _find(
                        results, server="fixed-reply", model=base, protocol=c.protocol, batch=1, clients=c.clients
                    )
                    alone = _find(results, server="onnxruntime", model=base, batch=1, clients=c.clients)
                    # the most any server on these libraries reached here, over the same peer; a ceiling only where
                    # the model itself costs next to nothing (in-process at least 5x the fixed reply's rate)
                    if fixed and alone and alone.requests_per_s >= 5 * fixed.requests_per_s:
                        v["ceiling_ratio"] = round(fixed.requests_per_s / p.requests_per_s, 3)
                    out.append(v)
        if c.model == "part" and c.batch == 256:
            p = _find(results, server="onnxruntime", model="part", batch=256, clients=c.clients)
            if p:
                target = "ParT batch 256: >= 85% of in-process onnxruntime jets/s"
                out.append(_verdict(target, r, p, "onnxruntime in-process", "jets_per_s", 0.85))
        if c.model == "part" and c.batch == 1 and c.clients == 8:
            off = _find(results, server="ai4hep", model="part_nobatch", protocol=c.protocol, batch=1, clients=8)
            if off:
                target = "ParT, 8 clients at batch 1: dynamic batching raises requests/s (>= 1.05x)"
                out.append(_verdict(target, r, off, "ai4hep without dynamic batching", "requests_per_s", 1.05))
    return out


def versions(peers: Path) -> dict:
    out = {}
    for name in ("ai4hep", "onnxruntime", "tritonclient", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    for venv, pkgs in (("mlserver-venv", ("mlserver", "onnxruntime")), ("kserve-venv", ("kserve", "onnxruntime"))):
        py = peers / venv / "bin" / "python"
        if py.exists():
            code = "import importlib.metadata as m,sys;print(' '.join(m.version(p) for p in sys.argv[1:]))"
            got = subprocess.run([str(py), "-c", code, *pkgs], capture_output=True, text=True).stdout.split()
            out.update({f"{venv.split('-')[0]}:{p}": v for p, v in zip(pkgs, got, strict=False)})
    return out


# ---------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--work", type=Path, default=REPO / "bench-data" / "serving")
    ap.add_argument("--peers", type=Path, default=REPO / "bench-data" / "peers", help="benchmarks/peers/setup.sh DIR")
    ap.add_argument("--out", type=Path, help="JSON record (e.g. docs/benchmarks/serving_compare.json)")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset of " + ",".join(SERVERS))
    ap.add_argument("--models", default="mlp,part")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--protocols", default="grpc,http", help="for the servers: grpc, http or both")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per cell")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per client and cell")
    ap.add_argument("--min-requests", type=int, default=2, help="measured requests per client at least")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over all cells; each cell reports its median round")
    ap.add_argument("--part-config", default=None, help="ParT training config (default configs/top_part.yaml)")
    ap.add_argument(
        "--mlserver-workers",
        type=int,
        default=0,
        help="MLServer parallel_workers (0: inference in the server process; its default is 1)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke: 1 s cells, 0.3 s warm-up, at least 1 request, no JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.min_requests = 1.0, 0.3, 1
    servers = [s for s in args.servers.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batches.split(",")]
    clients = [int(c) for c in args.clients.split(",")]
    protocols = set(args.protocols.split(","))
    bad = [s for s in servers if s not in SERVERS] + [m for m in models if m not in MODELS]
    if bad:
        sys.exit(f"unknown server or model {bad[0]!r}; servers: {', '.join(SERVERS)}; models: {', '.join(MODELS)}")
    for s in ("mlserver", "kserve"):
        if s in servers and not (args.peers / f"{s}-venv" / "bin" / "python").exists():
            sys.exit(f"{args.peers / (s + '-venv')} is missing; run benchmarks/peers/setup.sh {args.peers} first")
    work = args.work.resolve()
    load_before = os.getloadavg()

    print("preparing data, runs, ONNX files", flush=True)
    infos = {m: prepare_model(m, work, args.part_config) for m in models}
    pools = {m: str(prepare_pool(m, infos[m], work)) for m in models}
    for m in models:
        with np.load(pools[m]) as z:
            infos[m]["test_jets_in_requests"] = len(z["__ref__"])  # at most POOL_JETS; requests wrap around them
    onnx = {m: infos[m]["onnx"] for m in models}
    first_output = {m: onnx_outputs(onnx[m])[0] for m in models}
    repo = work / "repository"

    def cells(server: str, names: dict[str, str], sizes: list[int] | None = None, n_clients: list[int] | None = None):
        """The cells of one server: served model names (mapped to their base model) x batches x clients x protocols."""
        out = []
        for served, base in names.items():
            for batch in sizes or batches:
                for n in n_clients or clients:
                    for protocol, encoding in PROTOCOLS[server]:
                        if protocol == "in-process" or protocol in protocols:
                            cell = Cell(server, served, protocol, encoding, batch, n, output=first_output[base])
                            cell.pool = pools[base]
                            cell.duration, cell.warmup, cell.min_requests = (
                                args.duration,
                                args.warmup,
                                args.min_requests,
                            )
                            out.append(cell)
        return out

    failures: list[str] = []
    running: dict[str, Server] = {}
    sessions: dict = {}
    try:
        for name in servers:  # all up at once (idle ones cost nothing), so that cells can interleave
            if name == "onnxruntime":
                import onnxruntime as ort

                sessions = {m: ort.InferenceSession(onnx[m], providers=["CPUExecutionProvider"]) for m in models}
                continue
            if name == "ai4hep":
                server, served = start_ai4hep(repo, work), [v for m in models for v in ai4hep_variants(m)]
            elif name == "mlserver":
                server, served = start_mlserver(onnx, args.peers, work, args.mlserver_workers), models
            elif name == "fixed-reply":
                server, served = start_fixed_reply(pools, first_output, work), models
            else:
                server, served = start_kserve(onnx, args.peers, work), models
            try:
                server.wait_ready(served)
                running[name] = server
            except RuntimeError as exc:
                print(exc, flush=True)
                failures.append(str(exc).splitlines()[0])
        # Every server's cell of one (model, batch, clients) runs back to back: load from elsewhere on the machine
        # then shifts all servers alike.
        plan: list[Cell] = []
        for m in models:
            for batch in batches:
                for n in clients:
                    for name in servers:
                        if name == "fixed-reply" and batch != 1:
                            continue
                        if name in running or (name == "onnxruntime" and sessions):
                            plan += cells(name, {m: m}, [batch], [n])
                        if name in running and name == "ai4hep" and batch == 1:
                            plan += cells(name, {f"{m}_nobatch": m}, [1], [n])
            if m == "part" and sessions:
                plan += cells("onnxruntime", {"part": "part"}, [8], [1])  # what batching 8 requests can give
        rounds: dict[tuple, list[Result]] = {}
        for k in range(args.repeat):
            print(f"\nround {k + 1} of {args.repeat}" if args.repeat > 1 else "", flush=True)
            for cell in plan:
                if cell.server in running:
                    cell.url = running[cell.server].url(cell.protocol)
                r = run_cell(cell, sessions.get(cell.model) if cell.protocol == "in-process" else None)
                rounds.setdefault(key_of(cell), []).append(r)
                print(fmt_row(r), flush=True)
    finally:
        for server in running.values():
            server.stop()
    results = [median(rs) for rs in rounds.values()]

    load_after = os.getloadavg()
    verdicts = targets(results)
    print("\n" + table(results))
    print("\ntargets:")
    for v in verdicts:
        print(
            f"  {'PASS' if v['pass'] else 'FAIL'}  {v['target']}: {v['model']}, {v['protocol']}, {v['clients']} "
            f"client(s): ai4hep {v['ai4hep']:,} vs {v['peer']} {v['other']:,} = {v['ratio']:.2f}x"
            + (f" (fixed-reply ceiling {v['ceiling_ratio']:.2f}x)" if "ceiling_ratio" in v else "")
        )
    for failure in failures:
        print(f"  not measured: {failure}")
    print(f"\nload average (1/5/15 min) before {load_before}, after {load_after}")
    if args.out and not args.quick:
        from ai4hep.atomic import atomic_path
        from ai4hep.run.card import cpu_model

        record = {
            "benchmark": "benchmarks/serving_compare.py",
            "command": "python benchmarks/serving_compare.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "versions": versions(args.peers),
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "min_requests": args.min_requests,
                "repeat": args.repeat,
                "mlserver_parallel_workers": args.mlserver_workers,
            },
            "load_average": {"before": load_before, "after": load_after},
            "models": infos,
            "rows": [{**asdict(r.cell), **{k: v for k, v in asdict(r).items() if k != "cell"}} for r in results],
            "targets": verdicts,
            "server_failures": failures,
        }
        for row in record["rows"]:
            for k in ("url", "pool"):
                row.pop(k, None)
            for k in ("requests_per_s", "jets_per_s", "p50_ms", "p99_ms"):
                row[k] = float(f"{row[k]:.4g}")
        for info in infos.values():  # paths relative to the repository, as a reader would pass them
            for k in ("data", "run", "onnx"):
                info[k] = os.path.relpath(info[k], REPO)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
