"""Optional extras: the core imports none of them, and a verb whose extra is missing says so in one line.

An extra's absence is simulated in a subprocess: every finder on sys.meta_path is wrapped so that it finds nothing for
the hidden packages, exactly as if they were not installed (`import` raises ModuleNotFoundError, find_spec is None).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ai4hep.extras import DISTRIBUTIONS, EXTRAS, missing, require

ROOT = Path(__file__).resolve().parents[1]

HIDER = """
import sys

HIDDEN = {hidden!r}


def _hidden(name):
    return any(name == h or name.startswith(h + ".") for h in HIDDEN)


class _Hide:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if _hidden(name):
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)


for _name in [m for m in sys.modules if _hidden(m)]:
    del sys.modules[_name]
sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
"""

# The check every hidden run ends with: none of the hidden packages got imported on the way.
LEAK_CHECK = """
_leaked = sorted(m for m in sys.modules if _hidden(m))
if _leaked:
    print("imported:", _leaked, file=sys.stderr)
    sys.exit(99)
"""


def run_hidden(hidden, code: str, cwd: Path, exit_code: str = "0", timeout: int = 120) -> subprocess.CompletedProcess:
    """Run `code` with the `hidden` packages gone; then fail (99) if any was imported, else exit with `exit_code`."""
    script = HIDER.format(hidden=tuple(hidden)) + textwrap.dedent(code) + LEAK_CHECK + f"sys.exit({exit_code})\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def cli_without(hidden, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`ai4hep ARGS` through ai4hep.cli.main, with the `hidden` packages gone."""
    return run_hidden(hidden, f"from ai4hep.cli import main\n_rc = main({args!r})\n", cwd, exit_code="_rc")


COMMANDS = [
    ("serve", "'ai4hep serve'", ["serve", "--repository", "repo"]),
    ("serve", "'ai4hep infer'", ["infer", "x.h5", "--url", "127.0.0.1:1", "--model", "m", "--out", "pred"]),
    ("serve", "'ai4hep export triton'", ["export", "triton", "run", "--repository", "repo"]),
    ("fastml", "'ai4hep fastml convert'", ["fastml", "convert", "run"]),
    ("fastml", "'ai4hep fastml scan'", ["fastml", "scan", "run", "--quick"]),
    ("bench", "'ai4hep bench run'", ["bench", "run", "suite.yaml", "--db", "r.sqlite", "--work", "w"]),
    ("bench", "'ai4hep bench report'", ["bench", "report", "--out", "site", "--db", "r.sqlite"]),
    ("bench", "'ai4hep bench compare'", ["bench", "compare", "a.sqlite", "b.sqlite"]),
    ("dask", "'ai4hep data generate --dask'", ["data", "generate", "top", "--jets", "10", "--out", "o", "--dask", "x"]),
]


@pytest.mark.parametrize(("extra", "feature", "args"), COMMANDS, ids=[c[1].strip("'") for c in COMMANDS])
def test_missing_extra_is_one_line(tmp_path, extra, feature, args):
    result = cli_without(EXTRAS[extra], args, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"ai4hep: error: {feature} needs the {extra} extra ("), line
    assert line.endswith(f"; pip install 'ai4hep[{extra}]'"), line
    for module in EXTRAS[extra]:
        assert DISTRIBUTIONS.get(module, module) in line, line
    assert list(tmp_path.iterdir()) == [], "nothing is written before the check"


def test_one_missing_package_is_named(tmp_path):
    result = cli_without(["tritonclient"], ["serve", "--repository", "repo"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "ai4hep: error: 'ai4hep serve' needs the serve extra (tritonclient is not installed); "
        "pip install 'ai4hep[serve]'"
    )


def test_library_entry_checks_its_extra(tmp_path):
    """ai4hep.data.shards.generate is core; only its Dask path needs the dask extra, and says so before any work."""
    code = """
    from ai4hep.data.shards import generate
    from ai4hep.errors import UserError

    try:
        generate("top", 10, "o", dask_address="tcp://127.0.0.1:1", show_progress=False)
    except UserError as exc:
        print(exc)
    """
    result = run_hidden(EXTRAS["dask"], code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "needs the dask extra (dask, distributed are not installed)" in result.stdout, result.stdout
    assert not (tmp_path / "o").exists()


def test_core_imports_no_extra(tmp_path):
    """With every extra's packages hidden the core verbs' modules import and `ai4hep --help` works."""
    hidden = sorted({m for modules in EXTRAS.values() for m in modules})
    code = """
    import importlib
    import importlib.util

    evaluate = "ai4hep.evaluate" if importlib.util.find_spec("ai4hep.evaluate") else "ai4hep.metrics.evaluate"
    for name in ["ai4hep.cli", "ai4hep.data.shards", "ai4hep.train.run", "ai4hep.export.onnx", evaluate]:
        importlib.import_module(name)
    from ai4hep.cli import main

    for args in (["--help"], ["serve", "--help"], ["bench", "run", "--help"], ["fastml", "--help"], ["data", "list"]):
        assert main(args) == 0, args
    """
    result = run_hidden(hidden, code, tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Usage: ai4hep [OPTIONS] COMMAND" in result.stdout
    assert "top" in result.stdout


def test_every_extra_is_installed_for_the_tests():
    """`make` installs '.[all,dev]': every import name in the table must be found (a wrong name would not be)."""
    for extra in EXTRAS:
        assert missing(extra) == [], extra
        require(extra, "test")
    with pytest.raises(ValueError, match="unknown extra"):
        require("gpu", "test")


def test_table_agrees_with_pyproject():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    for extra, modules in EXTRAS.items():
        declared = {canonicalize_name(Requirement(r).name) for r in optional[extra]}
        checked = {canonicalize_name(DISTRIBUTIONS.get(m, m)) for m in modules}
        assert checked - declared <= {"distributed"}, extra  # dask[distributed]
        assert declared - checked <= {"protobuf"}, extra  # listed for its bound; onnx installs it
        assert not (declared | checked) & core, f"{extra} packages are also core dependencies"
    (everything,) = (Requirement(r) for r in optional["all"])
    assert everything.name == "ai4hep" and everything.extras == set(EXTRAS)


def test_error_names_the_pip_package():
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    for modules in EXTRAS.values():
        for module in modules:
            dists = {canonicalize_name(d) for d in provided.get(module.split(".")[0], [])}
            assert canonicalize_name(DISTRIBUTIONS.get(module, module)) in dists, module
