"""`ai4hep train` and `ai4hep evaluate`: a run directory from a config, and its metrics and plots."""

from __future__ import annotations

from pathlib import Path

import typer


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
    from ai4hep.evaluate import evaluate, headline

    m = evaluate(run, list(data) if data else None, out, reference, f_c=fc, f_b=fb)
    for note in m.get("data_warnings", []):
        typer.echo(f"ai4hep: warning: {note}", err=True)
    typer.echo(headline(m))
    if "reference" in m:
        typer.echo("reference " + headline(m["reference"]))
    typer.echo(f"wrote {Path(out) if out else run / 'eval'}/metrics.json and {len(m['plots'])} plot(s)")
