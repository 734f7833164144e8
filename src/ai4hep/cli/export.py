"""`ai4hep export` (ONNX, Triton model folder) and `ai4hep fastml` (hls4ml / conifer firmware, precision scans)."""

from __future__ import annotations

from pathlib import Path

import typer

from ai4hep.extras import require

app = typer.Typer(help="Export trained runs (ONNX, Triton model repository).", no_args_is_help=True)
fastml_app = typer.Typer(
    help="FPGA firmware for the trigger: hls4ml (MLP) and conifer (BDT), bit-accurate C++ emulation checked against "
    "float.",
    no_args_is_help=True,
)


@app.command("onnx")
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


@app.command("triton")
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
    require("serve", "'ai4hep export triton'")
    from ai4hep.serve.triton_export import export_triton

    r = export_triton(
        run, repository, name, version, max_batch_size, max_queue_delay_us, dynamic_batching, list(data or [])
    )
    tensors = ", ".join(f"{n} {t} {s}" for n, t, s in r["inputs"])
    batching = f"dynamic batching up to {r['max_queue_delay_us']} us" if r["dynamic_batching"] else "no batching"
    typer.echo(f"wrote {r['file']} (inputs {tensors})")
    kept = "" if r["config_written"] else " (kept; inputs and outputs agree)"
    typer.echo(f"config {r['config']}{kept}: max_batch_size {r['max_batch_size']}, {batching}")


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
    require("fastml", "'ai4hep fastml convert'")
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
    require("fastml", "'ai4hep fastml scan'")
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
