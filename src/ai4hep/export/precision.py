"""Fixed-point types as the FPGA tools spell them (`ap_fixed<W,I[,Q[,O]]>`), parsed once and checked.

A type that names no rounding or overflow mode gets rounding to nearest (AP_RND) and saturation (AP_SAT) here, not
the Xilinx defaults (truncation, wrap-around): truncation biases every accumulation downwards, and on the hlf5 MLP at
<16,6> it cost 0.7 points of argmax agreement with the float network (docs/fastml.md). Naming the modes keeps them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ai4hep.errors import UserError

ROUNDING = ("AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV", "AP_TRN", "AP_TRN_ZERO")
OVERFLOW = ("AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM", "AP_WRAP", "AP_WRAP_SM")
DEFAULT_ROUNDING, DEFAULT_OVERFLOW = "AP_RND", "AP_SAT"
_PATTERN = re.compile(r"^(?:ap_)?fixed<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(\w+)\s*)?(?:,\s*(\w+)\s*)?>$")
EXAMPLE = "e.g. --precision 'ap_fixed<16,6>' (total bits, integer bits including the sign)"


@dataclass(frozen=True)
class FixedPoint:
    """A signed fixed-point type: `width` bits in all, `integer` of them (sign included) left of the binary point."""

    width: int
    integer: int
    rounding: str = DEFAULT_ROUNDING
    overflow: str = DEFAULT_OVERFLOW
    given: str = ""

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    def hls(self) -> str:
        """The full C++ type, modes included (what hls4ml and conifer are given)."""
        return f"ap_fixed<{self.width},{self.integer},{self.rounding},{self.overflow}>"

    def short(self) -> str:
        if (self.rounding, self.overflow) == (DEFAULT_ROUNDING, DEFAULT_OVERFLOW):
            return f"ap_fixed<{self.width},{self.integer}>"
        return self.hls()

    def slug(self) -> str:
        """A folder name: ap_fixed_16_6 (modes appended when they are not ai4hep's defaults)."""
        return self.short().replace("<", "_").replace(">", "").replace(",", "_")

    def quantise(self, x: np.ndarray) -> np.ndarray:
        """Values on this type's grid (rounded to nearest, saturated): what the weights become in firmware."""
        step = 2.0**-self.fractional
        lo, hi = -(2.0 ** (self.integer - 1)), 2.0 ** (self.integer - 1) - step
        q = np.floor(x / step + 0.5) * step if self.rounding.startswith("AP_RND") else np.floor(x / step) * step
        return np.clip(q, lo, hi)


def parse_precision(text: str) -> FixedPoint:
    """'ap_fixed<16,6>' -> FixedPoint; a UserError that shows the expected form otherwise."""
    m = _PATTERN.match(text.strip())
    if not m:
        raise UserError(f"precision '{text}' is not a fixed-point type; {EXAMPLE}")
    width, integer = int(m.group(1)), int(m.group(2))
    rounding, overflow = m.group(3) or DEFAULT_ROUNDING, m.group(4) or DEFAULT_OVERFLOW
    if not 2 <= width <= 64:
        raise UserError(f"precision '{text}': total bits {width} must be 2..64; {EXAMPLE}")
    if not 1 <= integer <= width:
        raise UserError(
            f"precision '{text}': integer bits {integer} must be 1..{width} (the sign bit counts); {EXAMPLE}"
        )
    if rounding not in ROUNDING:
        raise UserError(f"precision '{text}': unknown rounding mode {rounding}; valid: {', '.join(ROUNDING)}")
    if overflow not in OVERFLOW:
        raise UserError(f"precision '{text}': unknown overflow mode {overflow}; valid: {', '.join(OVERFLOW)}")
    return FixedPoint(width, integer, rounding, overflow, given=text.strip())
