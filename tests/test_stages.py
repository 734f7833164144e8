"""The stages import only stages before them (docs/design.md): a static check of every `from ai4hep... import` in the
package, at module level and inside functions alike."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ai4hep"
# The stage order of docs/design.md; the shared modules at the package's top may be imported by every stage.
STAGES = ("data", "metrics", "plots", "models", "run", "train", "evaluate", "export", "serve", "bench", "cli")
SHARED = {"errors", "atomic", "extras", "__init__"}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("ai4hep"):
            if node.module == "ai4hep":  # from ai4hep import __version__ / a stage package
                found += [(node.lineno, f"ai4hep.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("ai4hep")]
    return found


def test_no_stage_imports_a_later_stage() -> None:
    backwards = []
    for path in sorted(SRC.rglob("*.py")):
        own = path.relative_to(SRC).parts[0].removesuffix(".py")
        if own in SHARED:
            continue
        assert own in STAGES, f"{path}: package '{own}' is not in the stage order of docs/design.md"
        for line, module in _imports(path):
            other = _stage(module)
            if other in SHARED or other == "__version__" or other == own:
                continue
            if STAGES.index(other) > STAGES.index(own):
                backwards.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not backwards, "imports that run back up the stages:\n" + "\n".join(backwards)


def test_the_check_sees_a_backward_import(tmp_path: Path) -> None:
    """The parser finds imports inside functions too (a lazy import is still a dependency)."""
    code = tmp_path / "m.py"
    code.write_text("def f():\n    from ai4hep.bench.store import RecordStore\n")
    assert _imports(code) == [(2, "ai4hep.bench.store")]
