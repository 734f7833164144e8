"""`ai4hep data`: list, generate, info and export datasets (ai4hep.data)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ai4hep.extras import require

app = typer.Typer(help="Open benchmark datasets generated reproducibly with Pythia 8 + FastJet.", no_args_is_help=True)


@app.command("list")
def data_list() -> None:
    """List the named datasets and their cards."""
    from ai4hep.data.cards import CARDS

    for card in CARDS.values():
        typer.echo(f"{card.name:<9} v{card.version}  {card.description}")
        typer.echo(f"{'':<12}classes: {', '.join(card.classes)}; after {card.reference}")


@app.command("generate")
def data_generate(
    name: str = typer.Argument(..., help="Dataset name (see 'ai4hep data list')."),
    jets: int = typer.Option(..., "--jets", help="Number of jets to generate."),
    out: Path = typer.Option(..., "--out", help="Output folder (one HDF5 file per shard)."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    seed: int = typer.Option(1, "--seed", help="Base seed; same seed and jets give identical arrays."),
    shard_size: str = typer.Option(
        "auto",
        "--shard-size",
        help="Jets per shard, or auto: min(1000, ceil(jets / 10)), so below 10,000 jets there are still 10 shards to "
        "split into train/val/test (a folder that already holds this dataset keeps its own shard size). An explicit "
        "number is used as given; the arrays depend on it.",
    ),
    detector: str = typer.Option("atlas-like", "--detector", help="Detector response: atlas-like or none."),
    pileup: float = typer.Option(0.0, "--pileup", help="Mean number of pile-up interactions (Poisson)."),
    dask: str = typer.Option(None, "--dask", help="Dask scheduler address, e.g. tcp://host:8786."),
) -> None:
    """Generate a dataset (resumes an interrupted run in the same folder)."""
    if dask:
        require("dask", "'ai4hep data generate --dask'")
    from ai4hep.data.shards import generate
    from ai4hep.errors import UserError

    size = shard_size.strip().lower()
    if size != "auto" and not size.lstrip("-").isdigit():
        raise UserError(f"--shard-size must be a positive number of jets or 'auto', got '{shard_size}'")
    s = generate(
        name,
        jets,
        out,
        seed=seed,
        workers=workers,
        shard_size=None if size == "auto" else int(size),
        detector=detector,
        pileup_mu=pileup,
        dask_address=dask,
    )
    skipped = sum(r.skipped for r in s.shards)
    rate = (s.n_jets - sum(r.n_jets for r in s.shards if r.skipped)) / max(s.seconds, 1e-9)
    for name, why in s.regenerated:
        typer.echo(f"regenerated {name}: it failed its check ({why})")
    typer.echo(
        f"wrote {s.n_jets} jets in {len(s.shards)} shard(s) of {s.shard_size} to {s.out_dir} "
        f"({skipped} shard(s) already there; {rate:.1f} jets/s); dataset hash {s.dataset_hash[:16]}"
    )


@app.command("info")
def data_info(
    path: Path = typer.Argument(..., help="A dataset folder or one shard file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Validate a dataset and summarise it."""
    from ai4hep.data.inspect import format_summary, summarise

    s = summarise(path)
    typer.echo(json.dumps(s, indent=2) if as_json else format_summary(s))


@app.command("export")
def data_export(
    path: Path = typer.Argument(..., help="A dataset folder or one shard file."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    fmt: str = typer.Option("parquet", "--format", help="Export format: parquet."),
) -> None:
    """Export to another format (parquet for weaver-core)."""
    from ai4hep.data.export import export

    files = export(path, out, fmt)
    typer.echo(f"wrote {len(files)} file(s) to {out}")
