"""Text of the results tables, one convention for every page."""

from __future__ import annotations

import math
import statistics


def mean_std(values: list[float], *, digits: int = 1, sign: str = "") -> str:
    """``"mean ± std"`` of ``values`` (sample std); the bare value for one value, ``"n/a"``
    for none; ``sign="+"`` writes the mean's sign. Non-finite values (a run without
    foreground seeds has no precision) are left out and counted: ``"x ± s (1 n/a)"``."""
    values = [float(v) for v in values]
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        missing = f"({len(values) - len(finite)} n/a)"
        return f"{mean_std(finite, digits=digits, sign=sign)} {missing}" if finite else "n/a"
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:{sign}.{digits}f}"
    return (f"{statistics.mean(values):{sign}.{digits}f} ± "
            f"{statistics.stdev(values):.{digits}f}")
