"""`ai4hep bench`: run a suite into the records store, the HTML leaderboard, and the upgrade check."""

from __future__ import annotations

from pathlib import Path

import typer

from ai4hep.errors import UserError
from ai4hep.extras import require

app = typer.Typer(help="Benchmark suites, records and the leaderboard.", no_args_is_help=True)
DEFAULT_DB = "bench-data/records.sqlite"
DB_HELP = "Records store: a SQLite file, or postgresql://user@host/db for a shared group leaderboard."


@app.command("run")
def bench_run_cmd(
    suite: Path = typer.Argument(..., help="Suite YAML (e.g. suites/standard.yaml)."),
    budget: str = typer.Option("small", "--budget", help="A budget named in the suite (small, full)."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    work: Path = typer.Option(Path("bench-data"), "--work", help="Folder for datasets, runs and artifacts."),
    only: list[str] = typer.Option(None, "--only", help="Run only these configs of the suite."),
) -> None:
    """Run every (dataset, config) cell of a suite over its seeds; one record per cell in the store."""
    require("bench", "'ai4hep bench run'")
    from ai4hep.bench.run import run_suite

    records = run_suite(suite, budget, db, work, list(only) if only else None, echo=typer.echo)
    typer.echo(f"added {len(records)} record(s) to {db}")


@app.command("report")
def bench_report_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for the static HTML site."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    suite: str = typer.Option(None, "--suite", help="Only records of this suite."),
) -> None:
    """A static HTML leaderboard (per task, sortable) with plots, model and dataset cards, environments."""
    require("bench", "'ai4hep bench report'")
    from ai4hep.bench.report import write_report
    from ai4hep.bench.store import RecordStore

    with RecordStore(db) as store:
        records = store.query(suite=suite)
    if not records:
        raise UserError(f"{db} holds no records{f' of suite {suite}' if suite else ''}; run 'ai4hep bench run' first")
    index = write_report(records, out)
    typer.echo(f"wrote {index} ({len(records)} records)")


@app.command("compare")
def bench_compare_cmd(
    old: str = typer.Argument(..., help="Records store before the change (file or URL)."),
    new: str = typer.Argument(..., help="Records store after the change (file or URL)."),
    k: float = typer.Option(2.0, "--k", help="Flag changes larger than k combined standard deviations."),
) -> None:
    """Flag metric changes beyond the uncertainties and re-run OLD's stored ONNX models under the current
    environment; exit code 1 when anything changed."""
    require("bench", "'ai4hep bench compare'")
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
