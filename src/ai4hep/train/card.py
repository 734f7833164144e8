"""Model-card pieces: package versions, git hash, CPU, FLOPs per jet, atomic JSON writes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ai4hep.atomic import atomic_path

PACKAGES = ("ai4hep", "torch", "lightning", "numpy", "h5py", "lightgbm", "pythia8mc", "fastjet", "onnx", "onnxruntime")


def write_json_atomic(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str))


def git_hash() -> str:
    """The commit of the ai4hep source tree ('-dirty' when it has local changes), or 'unknown' outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "packages": versions,
        "python": platform.python_version(),
        "git": git_hash(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
    }


def flops_per_jet(model, batch: dict) -> float:
    """Forward FLOPs per jet counted by torch's FlopCounterMode (matmuls, convolutions, attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ai4hep.train.module import model_inputs

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(**model_inputs(model, batch))
    finally:
        model.train(was_training)
    return float(counter.get_total_flops()) / max(len(batch["label"]), 1)
