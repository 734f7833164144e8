"""Index arithmetic shared by the vectorised generation steps."""

from __future__ import annotations

import numpy as np


def concat_ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The indices start_k, ..., start_k + size_k - 1 of every range k, concatenated in order, without a Python loop
    (the daughters of many particles, the constituents of many jets, the particles of many pooled events)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return np.repeat(np.asarray(starts) - offsets, sizes) + np.arange(int(np.sum(sizes)))
