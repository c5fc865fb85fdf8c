"""Small statistics helpers: percentiles of samples and median-and-spread over rounds."""

import math
import statistics

DASH = "\N{EN DASH}"  # between the min and max of a spread


def percentile(samples, q):
    """The q-th percentile (0-100) of samples, linear interpolation between closest ranks."""
    values = sorted(samples)
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    rank = (len(values) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def spread(values):
    """Median, quartiles, min and max of one figure measured once per round.

    None values (a figure a round could not produce) are left out; n says how many counted.
    """
    kept = [value for value in values if value is not None]
    if not kept:
        return {"median": None, "q1": None, "q3": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(kept),
        "q1": percentile(kept, 25),
        "q3": percentile(kept, 75),
        "min": min(kept),
        "max": max(kept),
        "n": len(kept),
    }


def ratio(numerator, denominator):
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def fmt(value, digits=2):
    """A figure for a table: None as an em dash, large numbers without decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def fmt_spread(summary, digits=2):
    """'median (min-max)', with an en dash, for a summary from spread()."""
    if not summary or summary.get("median") is None:
        return "—"
    if summary["n"] == 1 or summary["min"] == summary["max"]:
        return fmt(summary["median"], digits)
    return f"{fmt(summary['median'], digits)} ({fmt(summary['min'], digits)}{DASH}{fmt(summary['max'], digits)})"
