"""The `ai4hep` command: a thin layer over the library. User errors are one line and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ai4hep.errors import UserError

app = typer.Typer(
    help="ai4hep: the cross-experiment AI toolkit for particle physics.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(
    help="Open benchmark datasets generated reproducibly with Pythia 8 + FastJet.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
export_app = typer.Typer(help="Export trained runs (ONNX, Triton model repository).", no_args_is_help=True)
app.add_typer(export_app, name="export")
bench_app = typer.Typer(help="Benchmark suites, records and the leaderboard.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
fastml_app = typer.Typer(
    help="FPGA firmware for the trigger: hls4ml (MLP) and conifer (BDT), bit-accurate C++ emulation checked against "
    "float.",
    no_args_is_help=True,
)
app.add_typer(fastml_app, name="fastml")
DEFAULT_DB = "bench-data/records.sqlite"
DB_HELP = "Records store: a SQLite file, or postgresql://user@host/db for a shared group leaderboard."


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """Declares --debug for the help text; main() reads it from the arguments before typer runs."""


@data_app.command("list")
def data_list() -> None:
    """List the named datasets and their cards."""
    from ai4hep.data.cards import CARDS

    for card in CARDS.values():
        typer.echo(f"{card.name:<9} v{card.version}  {card.description}")
        typer.echo(f"{'':<12}classes: {', '.join(card.classes)}; after {card.reference}")


@data_app.command("generate")
def data_generate(
    name: str = typer.Argument(..., help="Dataset name (see 'ai4hep data list')."),
    jets: int = typer.Option(..., "--jets", help="Number of jets to generate."),
    out: Path = typer.Option(..., "--out", help="Output folder (one HDF5 file per shard)."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    seed: int = typer.Option(1, "--seed", help="Base seed; same seed and jets give identical arrays."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Jets per shard."),
    detector: str = typer.Option("atlas-like", "--detector", help="Detector response: atlas-like or none."),
    pileup: float = typer.Option(0.0, "--pileup", help="Mean number of pile-up interactions (Poisson)."),
    dask: str = typer.Option(None, "--dask", help="Dask scheduler address, e.g. tcp://host:8786."),
) -> None:
    """Generate a dataset (resumes an interrupted run in the same folder)."""
    from ai4hep.data.shards import generate

    s = generate(
        name,
        jets,
        out,
        seed=seed,
        workers=workers,
        shard_size=shard_size,
        detector=detector,
        pileup_mu=pileup,
        dask_address=dask,
    )
    skipped = sum(r.skipped for r in s.shards)
    rate = (s.n_jets - sum(r.n_jets for r in s.shards if r.skipped)) / max(s.seconds, 1e-9)
    typer.echo(
        f"wrote {s.n_jets} jets in {len(s.shards)} shard(s) to {s.out_dir} "
        f"({skipped} shard(s) already there; {rate:.1f} jets/s); dataset hash {s.dataset_hash[:16]}"
    )


@data_app.command("info")
def data_info(
    path: Path = typer.Argument(..., help="A dataset folder or one shard file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Validate a dataset and summarise it."""
    from ai4hep.data.inspect import format_summary, summarise

    s = summarise(path)
    typer.echo(json.dumps(s, indent=2) if as_json else format_summary(s))


@data_app.command("export")
def data_export(
    path: Path = typer.Argument(..., help="A dataset folder or one shard file."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    fmt: str = typer.Option("parquet", "--format", help="Export format: parquet."),
) -> None:
    """Export to another format (parquet for weaver-core)."""
    from ai4hep.data.export import export

    files = export(path, out, fmt)
    typer.echo(f"wrote {len(files)} file(s) to {out}")


@app.command("train")
def train_cmd(
    config: Path = typer.Argument(..., help="YAML training config (see configs/)."),
    out: Path = typer.Option(..., "--out", help="Run directory; an existing one with the same config resumes."),
    data: list[Path] = typer.Option(None, "--data", help="Dataset folders or shards (overrides data.paths)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Train a model from a config; resumes after a kill from the last atomic checkpoint."""
    from ai4hep.train.run import train

    card = train(config, out, [str(d) for d in data] if data else None, progress=progress)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in card["metrics"].items())
    typer.echo(
        f"trained {card['model']} on {card['dataset']['name']} in {card['training_time_s']:.1f}s "
        f"({card['parameter_count']} parameters; {card['train_jets_per_s']:.0f} training jets/s): {metrics}"
    )
    typer.echo(f"run directory: {out} (model card: {out / 'model_card.json'})")


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A run directory made by 'ai4hep train'."),
    data: list[Path] = typer.Option(None, "--data", help="Dataset folders or shards (default: the run's test split)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default RUN/eval)."),
    reference: Path = typer.Option(None, "--reference", help="A second run: ROC ratio panel against it."),
    fc: float = typer.Option(0.2, "--fc", min=0.0, max=1.0, help="f_c of the b-tagging discriminant (flavour)."),
    fb: float = typer.Option(0.3, "--fb", min=0.0, max=1.0, help="f_b of the c-tagging discriminant (flavour)."),
) -> None:
    """Metrics (AUC, rejection at fixed efficiency with errors, confusion matrix; flavour discriminants and working
    points for b/c/light taggers) and plots."""
    from ai4hep.metrics.evaluate import evaluate, headline

    m = evaluate(run, list(data) if data else None, out, reference, f_c=fc, f_b=fb)
    typer.echo(headline(m))
    if "reference" in m:
        typer.echo("reference " + headline(m["reference"]))
    typer.echo(f"wrote {Path(out) if out else run / 'eval'}/metrics.json and {len(m['plots'])} plot(s)")


@export_app.command("onnx")
def export_onnx_cmd(
    run: Path = typer.Argument(..., help="A run directory made by 'ai4hep train'."),
    out: Path = typer.Option(None, "--out", help="ONNX file (default RUN/export/model.onnx)."),
    data: list[Path] = typer.Option(None, "--data", help="Jets to validate on (default: the run's test split)."),
    tolerance: float = typer.Option(1e-4, "--tolerance", min=0.0, help="Largest allowed |ONNX - original model|."),
) -> None:
    """Export a trained model (network, BDT or IP3D templates) to ONNX (dynamic batch and object axes, preprocessing
    embedded), validated against PyTorch / LightGBM / numpy on real test jets."""
    from ai4hep.export.onnx import export_onnx

    r = export_onnx(run, out, list(data) if data else None, tolerance=tolerance)
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in r["max_abs_diff"].items())
    typer.echo(f"wrote {r['file']} (outputs {', '.join(r['outputs'])}; {r['exporter']})")
    typer.echo(f"checked against {r['checked_against']} on {r['validated_jets']} test jets: max |difference| {diffs}")


@export_app.command("triton")
def export_triton_cmd(
    run: Path = typer.Argument(..., help="A run directory made by 'ai4hep train'."),
    repository: Path = typer.Option(..., "--repository", help="Model repository folder (Triton layout)."),
    name: str = typer.Option(None, "--name", help="Model name (default: the run folder's name)."),
    version: int = typer.Option(1, "--version", help="Version folder to write."),
    max_batch_size: int = typer.Option(1024, "--max-batch-size", help="Largest batch per execution (config.pbtxt)."),
    max_queue_delay_us: int = typer.Option(100, "--max-queue-delay-us", help="Dynamic batcher's wait for more."),
    dynamic_batching: bool = typer.Option(True, "--dynamic-batching/--no-dynamic-batching", help="Batch requests."),
    data: list[Path] = typer.Option(None, "--data", help="Jets to validate the ONNX file on (default: test split)."),
) -> None:
    """Write RUN as a Triton model folder (NAME/config.pbtxt, NAME/VERSION/model.onnx) for 'ai4hep serve' or Triton."""
    from ai4hep.serve.triton_export import export_triton

    r = export_triton(
        run, repository, name, version, max_batch_size, max_queue_delay_us, dynamic_batching, list(data or [])
    )
    tensors = ", ".join(f"{n} {t} {s}" for n, t, s in r["inputs"])
    batching = f"dynamic batching up to {r['max_queue_delay_us']} us" if r["dynamic_batching"] else "no batching"
    typer.echo(f"wrote {r['file']} (inputs {tensors})")
    kept = "" if r["config_written"] else " (kept; inputs and outputs agree)"
    typer.echo(f"config {r['config']}{kept}: max_batch_size {r['max_batch_size']}, {batching}")


@app.command("serve")
def serve_cmd(
    repository: Path = typer.Option(..., "--repository", help="Model repository (see 'ai4hep export triton')."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    http_port: int = typer.Option(8000, "--http-port", help="HTTP/REST port (0: a free one)."),
    grpc_port: int = typer.Option(8001, "--grpc-port", help="gRPC port (0: a free one)."),
    token: str = typer.Option(None, "--token", envvar="AI4HEP_SERVE_TOKEN", help="Require 'Bearer TOKEN'."),
    max_request_mb: float = typer.Option(64.0, "--max-request-mb", help="Largest request body accepted."),
    threads: int = typer.Option(0, "--threads", min=0, help="onnxruntime intra-op threads (0: one per core)."),
    drain_timeout: float = typer.Option(30.0, "--drain-timeout", min=0.0, help="Seconds to finish in-flight work."),
    spin: bool = typer.Option(True, "--spin/--no-spin", help="Let idle onnxruntime threads spin (its default)."),
) -> None:
    """Serve ONNX models over the Open Inference Protocol (Triton/KServe v2), HTTP and gRPC, until SIGTERM."""
    from ai4hep.serve.server import serve

    serve(repository, host, http_port, grpc_port, token, max_request_mb, threads, drain_timeout, _echo_flush, spin)


def _echo_flush(line: str) -> None:
    typer.echo(line)
    sys.stdout.flush()


@bench_app.command("run")
def bench_run_cmd(
    suite: Path = typer.Argument(..., help="Suite YAML (e.g. suites/standard.yaml)."),
    budget: str = typer.Option("small", "--budget", help="A budget named in the suite (small, full)."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    work: Path = typer.Option(Path("bench-data"), "--work", help="Folder for datasets, runs and artifacts."),
    only: list[str] = typer.Option(None, "--only", help="Run only these configs of the suite."),
) -> None:
    """Run every (dataset, config) cell of a suite over its seeds; one record per cell in the store."""
    from ai4hep.bench.run import run_suite

    records = run_suite(suite, budget, db, work, list(only) if only else None, echo=typer.echo)
    typer.echo(f"added {len(records)} record(s) to {db}")


@bench_app.command("report")
def bench_report_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for the static HTML site."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    suite: str = typer.Option(None, "--suite", help="Only records of this suite."),
) -> None:
    """A static HTML leaderboard (per task, sortable) with plots, model and dataset cards, environments."""
    from ai4hep.bench.report import write_report
    from ai4hep.bench.store import RecordStore

    with RecordStore(db) as store:
        records = store.query(suite=suite)
    if not records:
        raise UserError(f"{db} holds no records{f' of suite {suite}' if suite else ''}; run 'ai4hep bench run' first")
    index = write_report(records, out)
    typer.echo(f"wrote {index} ({len(records)} records)")


@bench_app.command("compare")
def bench_compare_cmd(
    old: str = typer.Argument(..., help="Records store before the change (file or URL)."),
    new: str = typer.Argument(..., help="Records store after the change (file or URL)."),
    k: float = typer.Option(2.0, "--k", help="Flag changes larger than k combined standard deviations."),
) -> None:
    """Flag metric changes beyond the uncertainties and re-run OLD's stored ONNX models under the current
    environment; exit code 1 when anything changed."""
    from ai4hep.bench.compare import compare
    from ai4hep.bench.store import RecordStore

    with RecordStore(old) as a, RecordStore(new) as b:
        result = compare(a.latest(), b.latest(), k)
    for row in result["metrics"]:
        mark = "CHANGED" if row["flagged"] else "ok"
        typer.echo(
            f"{mark:7} {row['task']}/{row['config']}/{row['budget']} {row['metric']}: {row['old']:.4g} -> "
            f"{row['new']:.4g} (delta {row['delta']:+.3g}, sigma {row['sigma']:.2g})"
        )
    for r in result["onnx"]:
        diffs = ", ".join(f"{name} {v:.1e}" for name, v in r.get("max_abs_diff", {}).items())
        typer.echo(f"onnx {r['status']:7} {r['task']}/{r['config']}/{r['budget']}: {diffs or r['status']}")
    n_bad = len(result["flagged"]) + len(result["onnx_changed"])
    typer.echo(f"{len(result['metrics'])} metric(s) compared, {n_bad} change(s) beyond tolerance")
    if n_bad:
        raise typer.Exit(1)


@app.command("infer")
def infer_cmd(
    paths: list[Path] = typer.Argument(..., help="Dataset folders or shard files."),
    url: str = typer.Option(..., "--url", help="Server: host:port or http://host:port (HTTP), grpc://host:port."),
    model: str = typer.Option(..., "--model", help="Model name in the server's repository."),
    out: Path = typer.Option(..., "--out", help="Folder for the predictions (one file per shard, same name)."),
    version: str = typer.Option("", "--version", help="Model version (default: the server's choice)."),
    run: Path = typer.Option(None, "--run", help="Run dir with the preprocessing, if the model config lacks it."),
    batch_size: int = typer.Option(256, "--batch-size", help="Jets per request."),
    token: str = typer.Option(None, "--token", envvar="AI4HEP_SERVE_TOKEN", help="Bearer token of the server."),
) -> None:
    """Batch inference of HDF5 datasets through a Triton-compatible server; resumes after an interruption."""
    from ai4hep.serve.infer import infer

    r = infer(list(paths), url, model, out, version, run, batch_size, token)
    done = f"{r['written']} written, {r['skipped']} already done"
    typer.echo(f"{r['jets']} jets in {r['shards']} shard(s): {done} -> {out}")


@fastml_app.command("convert")
def fastml_convert_cmd(
    run: Path = typer.Argument(..., help="A run directory (model mlp or bdt) made by 'ai4hep train'."),
    precision: str = typer.Option("ap_fixed<16,6>", "--precision", help="Fixed-point type, e.g. 'ap_fixed<16,6>'."),
    out: Path = typer.Option(None, "--out", help="Output folder (default RUN/fastml/<precision>)."),
    data: list[Path] = typer.Option(None, "--data", help="Jets to validate on (default: the run's test split)."),
    granularity: str = typer.Option("model", "--granularity", help="model (pinned, safe) or name (hls4ml auto)."),
    reuse_factor: int = typer.Option(1, "--reuse-factor", help="hls4ml reuse factor (1: fully parallel)."),
    max_jets: int = typer.Option(100_000, "--max-jets", min=1, help="Jets to validate on, at most."),
    synth: bool = typer.Option(True, "--synth/--no-synth", help="Synthesise when Vitis/Vivado HLS is on PATH."),
) -> None:
    """Convert with hls4ml (MLP) or conifer (BDT), compile the bit-accurate C++ emulation with g++, and validate it
    against float (accuracy, argmax agreement, max output difference); a collapsed conversion is an error."""
    from ai4hep.export.fastml import convert, summary

    r = convert(run, precision, out, list(data) if data else None, granularity, reuse_factor, max_jets, synth)
    for line in summary(r):
        typer.echo(line)


@fastml_app.command("scan")
def fastml_scan_cmd(
    run: Path = typer.Argument(..., help="An MLP run directory made by 'ai4hep train'."),
    out: Path = typer.Option(None, "--out", help="Output folder (default RUN/fastml/scan)."),
    data: list[Path] = typer.Option(None, "--data", help="Jets to validate on (default: the run's test split)."),
    widths: str = typer.Option(None, "--widths", help="Total bits, e.g. 6,8,10,12,14,16,18 (the default)."),
    integers: str = typer.Option(None, "--integers", help="Integer bits, e.g. 3,4,5,6 (the default)."),
    prune: str = typer.Option(None, "--prune", help="Sparsities to prune to, e.g. 0.5,0.75,0.9; 'none' skips."),
    prune_precision: list[str] = typer.Option(None, "--prune-precision", help="Precisions of the pruned models."),
    qat_bits: str = typer.Option(None, "--qat-bits", help="QAT (brevitas) bit widths, e.g. 4,6,8; 'none' skips."),
    epochs: int = typer.Option(None, "--epochs", min=0, help="Fine-tuning epochs for pruning and QAT."),
    quick: bool = typer.Option(False, "--quick", help="A small grid (2 precisions, 1 pruned, 1 QAT)."),
    max_jets: int = typer.Option(100_000, "--max-jets", min=1, help="Jets to validate on, at most."),
    keep_projects: bool = typer.Option(False, "--keep-projects", help="Keep every hls4ml project under OUT."),
    synth: bool = typer.Option(False, "--synth", help="Also synthesise every configuration (needs vitis-run; slow)."),
) -> None:
    """Precision scan (total and integer bits), pruning and quantisation-aware training: accuracy, agreement with
    float and a resource proxy per configuration (scan.csv, scan.json, scan.png); reports the smallest configuration
    whose accuracy is within 0.01 of float."""
    from ai4hep.export.fastml_scan import make_grid, parse_list, scan, table

    grid = make_grid(
        quick,
        widths=parse_list(widths, int, "--widths"),
        integers=parse_list(integers, int, "--integers"),
        sparsities=parse_list(prune, float, "--prune"),
        prune_precisions=list(prune_precision) if prune_precision else None,
        qat_bits=parse_list(qat_bits, int, "--qat-bits"),
        epochs=epochs,
    )
    r = scan(run, out, list(data) if data else None, grid, max_jets, keep_projects, echo=typer.echo, synth=synth)
    for line in table(r):
        typer.echo(line)
    typer.echo(f"synthesis: {r['synthesis']}")
    typer.echo(f"wrote {r['output_dir']} (scan.csv, scan.json, scan.png; {r['seconds']:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps errors to one line and an exit code (2 for user errors, 130 for Ctrl-C)."""
    import signal

    from ai4hep.errors import UserError

    # Ctrl-C must stop a run cleanly even when a parent shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    interrupted = (
        "ai4hep: interrupted; finished shards are kept and nothing half-written was left; "
        "run the same command again to resume"
    )
    try:
        rv = command.main(args=args, prog_name="ai4hep", standalone_mode=False)
    except UserError as exc:
        if debug:
            raise
        print(f"ai4hep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except Exception as exc:
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click / typer usage errors
            print(f"ai4hep: error: {exc.format_message()} (see 'ai4hep --help')", file=sys.stderr)
            return int(exc.exit_code)
        if debug:
            raise
        print(
            f"ai4hep: error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    if rv == 130:  # typer turns Ctrl-C into exit code 130
        print(interrupted, file=sys.stderr)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
