"""Atomic file writes: every output (shard, manifest, checkpoint, card, plot) appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ai4hep.errors import UserError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write; renamed onto `path` when the block succeeds, removed when it fails.

    The name keeps the suffix (`.roc.tmp-123.png`) for writers that pick a format from it, and matches `.*.tmp-*`, the
    pattern a resumed run sweeps away.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_target(path: Path, option: str = "--out", kind: str = "folder", example: str = "") -> None:
    """Fail before any work, writing nothing, when `path` cannot become the output `kind` ("folder" or "file"): an
    existing entry of the other kind, a parent that is a file, or a place that is read-only or not writable. The
    error is one UserError line naming `option`; `example` is a file name suggested when a file path is a folder."""
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise UserError(f"{option} {path} is a file, not a folder; choose another {option}")
        if kind == "file" and path.is_dir():
            hint = f", e.g. {path / example}" if example else ""
            raise UserError(f"{option} {path} is a folder; give the path of the file to write{hint}")
    base = path if kind == "folder" and path.is_dir() else path.parent
    while not base.exists() and base != base.parent:  # the deepest folder that is already there
        base = base.parent
    if not base.is_dir():
        raise UserError(f"{option} {path} lies under {base}, which is a file, not a folder; choose another {option}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(
            f"{option} {path} cannot be written ({base} is on a read-only file system or not writable); "
            f"choose another {option}"
        )


def make_dir(path: Path, option: str = "--out") -> Path:
    """`mkdir -p path`, or one UserError line naming `option` (a parent that is a file, a read-only file system)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UserError(f"cannot create {option} folder {path}: {why}; choose another {option}") from None
    return path
