"""Text of the results tables, one convention for every page."""

from __future__ import annotations

import statistics


def mean_std(values: list[float], *, digits: int = 1, sign: str = "") -> str:
    """``"mean ± std"`` of ``values`` (sample std); the bare value for one value, ``"n/a"``
    for none; ``sign="+"`` writes the mean's sign."""
    values = list(values)
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:{sign}.{digits}f}"
    return (f"{statistics.mean(values):{sign}.{digits}f} ± "
            f"{statistics.stdev(values):.{digits}f}")
