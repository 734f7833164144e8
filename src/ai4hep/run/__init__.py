"""The run directory: its layout, its config schema, writing it (training) and reading it (everything else)."""

from ai4hep.run.layout import CARD, CONFIG, PREPROCESSING, write_json_atomic
from ai4hep.run.reader import TrainedRun, recipe

__all__ = ["CARD", "CONFIG", "PREPROCESSING", "TrainedRun", "recipe", "write_json_atomic"]
