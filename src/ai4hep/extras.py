"""The optional extras of ai4hep, and one clear error line when a feature's extra is not installed.

The core install (`pip install ai4hep`) covers data, train, evaluate and ONNX export. Every other verb needs an extra
(`pip install 'ai4hep[serve]'`); `require` is called at the start of that verb's CLI command and of the library
function behind it, before anything heavy is imported or any work is done. It only looks the modules up
(`importlib.util.find_spec`); it never imports them.
"""

from __future__ import annotations

import importlib.util

from ai4hep.errors import UserError

# extra -> the import names it provides (the packages of its [project.optional-dependencies] list in pyproject.toml;
# tests/test_extras.py checks the two agree). `all` is every extra together.
EXTRAS: dict[str, tuple[str, ...]] = {
    "fastml": ("hls4ml", "conifer", "pandas", "brevitas", "qonnx", "onnxoptimizer"),
    # protobuf is listed in the serve extra for its lower bound only: onnx (a core dependency) installs it anyway.
    "serve": ("tritonclient", "grpc", "httptools", "hpack", "prometheus_client"),
    # SQLite (the default store) needs SQLAlchemy and Alembic only (sqlite3 is in the standard library); psycopg is
    # the PostgreSQL driver. All three come with the extra, so all three are checked.
    "bench": ("sqlalchemy", "alembic", "psycopg"),
    "dask": ("dask", "distributed"),
}

# Import name -> the name pip installs it under, where the two differ (for the error message).
DISTRIBUTIONS: dict[str, str] = {
    "grpc": "grpcio",
    "prometheus_client": "prometheus-client",
    "sqlalchemy": "SQLAlchemy",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False
    except ValueError:  # already imported, without a __spec__: it is there
        return True


def missing(extra: str) -> list[str]:
    """The import names of `extra` that cannot be found (empty when the extra is installed)."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known extras: {', '.join(EXTRAS)}")
    return [m for m in EXTRAS[extra] if not _installed(m)]


def require(extra: str, feature: str) -> None:
    """Raise a UserError (one line, exit code 2 from the CLI) when any module of `extra` is not installed.

    `feature` names what needs it, e.g. "'ai4hep serve'".
    """
    absent = [DISTRIBUTIONS.get(m, m) for m in missing(extra)]
    if absent:
        verb = "is" if len(absent) == 1 else "are"
        raise UserError(
            f"{feature} needs the {extra} extra ({', '.join(absent)} {verb} not installed); "
            f"pip install 'ai4hep[{extra}]'"
        )
