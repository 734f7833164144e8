"""Jet-flavour labels and track-origin categories, defined once as data: generation writes them, models size their
heads from them, metrics and plots name their classes with them.

Jet flavour: the `flavour` field holds ATLAS's HadronConeExclTruthLabelID convention (5 = b, 4 = c, 0 = light), the
`label` field the class index into FLAVOURS. Track origin: the `origin` field holds the index into ORIGINS (ai4hep's
own codes, documented in docs/datasets.md; they are not ATLAS's ftagTruthOriginLabel codes).
"""

from __future__ import annotations

from types import MappingProxyType

# Jet flavour classes in class-index order, and the hadron-cone truth label (HadronConeExclTruthLabelID) of each.
FLAVOURS: tuple[str, ...] = ("light", "c", "b")
LIGHT, C, B = range(len(FLAVOURS))
HADRON_LABEL_ID = MappingProxyType({"light": 0, "c": 4, "b": 5})
FLAVOUR_CLASS = MappingProxyType({HADRON_LABEL_ID[name]: k for k, name in enumerate(FLAVOURS)})  # {0: 0, 4: 1, 5: 2}

# Track-origin categories in code order.
ORIGINS: tuple[str, ...] = ("from_b", "from_c", "primary", "other_secondary", "pileup")
FROM_B, FROM_C, PRIMARY, OTHER_SECONDARY, PILEUP = range(len(ORIGINS))


def is_flavour_classes(classes: list[str] | tuple[str, ...]) -> bool:
    """Whether a dataset's classes are the b / c / light flavour classes (in class-index order)."""
    return tuple(classes) == FLAVOURS
