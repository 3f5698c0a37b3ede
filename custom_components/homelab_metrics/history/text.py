"""A row's values as exports write them, made once when the row is stored.

A stored row never changes, and it is exported many times: so its values are written out once, by
the writer thread, into the row's `line` column. An export then reads each row as one short text
(SQLite puts the timestamp in front), instead of making a Python number of each value and
formatting it again, which was most of an export's time.

The text holds the values in `columns_for(tier)` order after the timestamp: three decimals, whole
numbers for byte rates and sample counts, nothing at all for a missing value (also infinity and
NaN), never "-0". Values are separated by control characters, a different one before each value
after the first, so that one `bytes.translate` turns many rows into CSV (every separator a comma)
and one `bytes.replace` per column into JSON (each separator the next key). No number's text holds
any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import isfinite
import re
from typing import Any

from .metrics import METRICS, Tier

SEPARATORS = "".join(chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r")
"""The separator before the second value, the third, ... (28: room for 9 metrics per row)."""

_WHOLE_SPEC = "z.0f"
_DECIMAL_SPEC = "z.3f"
# The same in printf style, which formats a whole row in one call but knows no "z" (no -0 fix).
_PRINTF = {_WHOLE_SPEC: "%.0f", _DECIMAL_SPEC: "%.3f"}

_NON_FINITE = re.compile("-?inf|nan")
_NEGATIVE_ZERO = re.compile(f"-(0(?:\\.0+)?)(?=[{SEPARATORS}]|$)")

type LineWriter = Callable[..., str]
"""Writes the values of one row (all but the timestamp) as its stored text."""


def whole(key: str) -> bool:
    """Whether a metric's values are written as whole numbers (byte rates)."""
    return key.endswith("_bytes_per_second")


def raw_writer(keys: Sequence[str]) -> LineWriter:
    """The writer of raw rows: one value per metric key."""
    return _writer(_raw_whole(keys))


def aggregate_writer(keys: Sequence[str]) -> LineWriter:
    """The writer of hourly and daily rows: avg, min, max per metric key, then samples."""
    return _writer(_aggregate_whole(keys))


def tier_whole(tier: Tier) -> list[bool]:
    """Which values of a tier's rows (after the timestamp) are written as whole numbers."""
    keys = [m.key for m in METRICS]
    return _raw_whole(keys) if tier is Tier.RAW else _aggregate_whole(keys)


def tier_writer(tier: Tier) -> LineWriter:
    """The writer of a tier's rows, with today's metrics."""
    return _writer(tier_whole(tier))


def _raw_whole(keys: Sequence[str]) -> list[bool]:
    return [whole(key) for key in keys]


def _aggregate_whole(keys: Sequence[str]) -> list[bool]:
    return [whole(key) for key in keys for _ in range(3)] + [True]


def _writer(whole_values: Sequence[bool]) -> LineWriter:
    specs = [_WHOLE_SPEC if w else _DECIMAL_SPEC for w in whole_values]
    if len(specs) > len(SEPARATORS) + 1:
        raise ValueError(f"{len(specs)} values per row: more than the separators allow")
    template = "".join(
        (SEPARATORS[i - 1] if i else "") + _PRINTF[spec] for i, spec in enumerate(specs)
    )

    def write(*values: Any) -> str:
        """The values' text: through the template, or value by value if one does not fit it."""
        try:
            text = template % values
        except (TypeError, ValueError, OverflowError):
            if len(values) != len(specs):
                raise ValueError(
                    f"{len(values)} values for {len(specs)} columns"
                ) from None
            return "".join(
                (SEPARATORS[i - 1] if i else "") + _value(value, spec)
                for i, (value, spec) in enumerate(zip(values, specs, strict=True))
            )
        # The template writes infinity and NaN as such, and a value rounding to zero from below
        # as "-0.000": mended here, at the cost of a search of the text when neither occurs.
        if "n" in text:
            text = _NON_FINITE.sub("", text)
        if "-0" in text:
            text = _NEGATIVE_ZERO.sub(r"\1", text)
        return text

    return write


def _value(value: Any, spec: str) -> str:
    """One value's text; anything that is not a finite number is missing."""
    try:
        return format(value, spec) if isfinite(value) else ""
    except (TypeError, ValueError, OverflowError):
        return ""
