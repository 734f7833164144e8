"""Models: network and fitted-model definitions, the registry that names them, and the kinds that run them."""

from ai4hep.models.registry import MODELS, ModelEntry, get_model

__all__ = ["MODELS", "ModelEntry", "get_model"]
