"""ai4hep: the cross-experiment AI toolkit for particle physics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ai4hep")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
