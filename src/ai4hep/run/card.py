"""The environment a run records in its model card (and a benchmark record in its own): package versions, the git
hash of the ai4hep source, the CPU."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("ai4hep", "torch", "lightning", "numpy", "h5py", "lightgbm", "pythia8mc", "fastjet", "onnx", "onnxruntime")


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
