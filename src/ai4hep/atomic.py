"""Atomic file writes: every output (shard, manifest, checkpoint, card, plot) appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


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
