"""The `ai4hep` command: a thin layer over the library. User errors are one line and exit code 2.

One module per verb group (data, train, export, serve, bench); each command imports the library only when it runs,
so `ai4hep --help` imports nothing heavy. Commands that need an optional extra check it first (ai4hep.extras).
"""

from __future__ import annotations

import sys

import typer

from ai4hep.cli import bench, data, export, serve, train

app = typer.Typer(
    help="ai4hep: the cross-experiment AI toolkit for particle physics.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(export.app, name="export")
app.add_typer(bench.app, name="bench")
app.add_typer(export.fastml_app, name="fastml")
app.command("train")(train.train_cmd)
app.command("evaluate")(train.evaluate_cmd)
app.command("serve")(serve.serve_cmd)
app.command("infer")(serve.infer_cmd)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """Declares --debug for the help text; main() reads it from the arguments before typer runs."""


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
