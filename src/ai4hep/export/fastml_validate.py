"""Fixed point against float on the same jets, and the guard against a silent collapse.

A collapse is what hls4ml's automatic per-layer types can do to a softmax: every jet gets the same output, accuracy
falls to chance, and nothing raises. It is flagged when the fixed-point outputs barely vary across jets, when every
jet gets one class while the float model predicts several, or when accuracy falls to chance while float is clearly
above it.
"""

from __future__ import annotations

import re

import numpy as np

from ai4hep.errors import UserError

SPREAD_FRACTION = 0.01  # fixed-point spread below 1% of the float spread: constant outputs
CHANCE_FRACTION = 0.1  # fixed accuracy keeps less than 10% of float's margin over chance


def compare(float_probs: np.ndarray, fixed_probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of both, argmax agreement, output differences and the numbers the collapse guard reads."""
    n, k = float_probs.shape
    pf, pq = float_probs.argmax(1), fixed_probs.argmax(1)
    chance = float(np.bincount(labels, minlength=k).max() / n) if n else 0.0
    diff = np.abs(fixed_probs - float_probs)
    return {
        "n_jets": int(n),
        "float_accuracy": float((pf == labels).mean()),
        "fixed_accuracy": float((pq == labels).mean()),
        "accuracy_difference": float((pq == labels).mean() - (pf == labels).mean()),
        "argmax_agreement": float((pf == pq).mean()),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "chance_accuracy": chance,
        "float_spread": float(float_probs.std(0).max()),
        "fixed_spread": float(fixed_probs.std(0).max()),
        "float_classes_predicted": len(np.unique(pf)),
        "fixed_classes_predicted": len(np.unique(pq)),
    }


def collapse(m: dict) -> str | None:
    """What collapsed, in words, or None."""
    if m["n_jets"] >= 2 and m["float_spread"] > 0 and m["fixed_spread"] <= SPREAD_FRACTION * m["float_spread"]:
        return f"the fixed-point outputs are (nearly) constant across the {m['n_jets']} jets"
    if m["float_classes_predicted"] > 1 and m["fixed_classes_predicted"] == 1:
        return f"every one of the {m['n_jets']} jets gets the same class"
    margin = m["float_accuracy"] - m["chance_accuracy"]
    if margin > 0.1 and m["fixed_accuracy"] - m["chance_accuracy"] < CHANCE_FRACTION * margin:
        return "the fixed-point accuracy fell to chance level"
    return None


def _integer_bits(type_name: str | None) -> int | None:
    m = re.search(r"fixed<\s*\d+\s*,\s*(-?\d+)", type_name or "")
    return int(m.group(1)) if m else None


def check(m: dict, softmax_input: str | None = None, granularity: str = "model") -> None:
    """Raise the one-line UserError that names the collapse, its likely cause and the fix."""
    what = collapse(m)
    if what is None:
        return
    numbers = (
        f"fixed accuracy {m['fixed_accuracy']:.3f} vs float {m['float_accuracy']:.3f}, argmax agreement "
        f"{m['argmax_agreement']:.3f}, output spread {m['fixed_spread']:.2g} vs float {m['float_spread']:.2g}"
    )
    bits = _integer_bits(softmax_input)
    if bits is not None and bits > 8:
        cause = (
            f"the softmax lookup table is indexed by the top bits of its input type {softmax_input}"
            + (" (hls4ml's automatic per-layer precision, --granularity name)" if granularity == "name" else "")
            + ", so every jet hits the same table entry"
        )
    elif granularity == "name":
        cause = "hls4ml's automatic per-layer precision (--granularity name) chose types this network does not fit"
    else:
        cause = "the precision is too narrow for this network (values saturate or vanish)"
    fix = (
        "use --granularity model (ai4hep's default, which pins the pre-softmax type and softmax table) "
        "or pin the precision, e.g. --precision 'ap_fixed<16,6>'"
    )
    raise UserError(f"fixed-point emulation collapsed: {what} ({numbers}); cause: {cause}; fix: {fix}; nothing written")
