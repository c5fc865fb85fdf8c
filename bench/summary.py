"""Summaries over rounds and ratios within rounds: the figures every report quotes.

Each round measures every figure once per pattern. A figure is summarised as its median
over the rounds with its quartiles and min-max spread (bench.stats.spread); a figure a
round could not produce is left out and `n` says how many rounds counted. Ratios between
patterns are taken within each round, where both patterns ran side by side on the same
server under the same machine noise, and only then summarised over the rounds.
"""

from bench.stats import ratio, spread

FIGURE_LABELS = {
    "get_p50_ms": "warm GET /items/{id} p50, ms",
    "get_p95_ms": "warm GET /items/{id} p95, ms",
    "post_p50_ms": "warm POST /items p50, ms",
    "post_p95_ms": "warm POST /items p95, ms",
    "cold_start_ms": "cold start (spawn to first response), ms",
    "import_ms": "handler module import, ms",
    "conns_opened_per_1000": "connections opened per 1000 invocations",
    "conns_opened_per_invocation": "connections opened per invocation",
    "conns_opened_warm": "connections opened after the first invocation",
    "conns_live_end": "connections live at the end",
    "rss_100_mb": "resident memory after 100 invocations, MB",
    "rss_1000_mb": "resident memory after 1000 invocations, MB",
    "rss_growth_pct": "resident memory growth 100 → 1000, %",
    "rss_peak_mb": "peak resident memory, MB",
    "credential_reads_per_1000": "credential checks per 1000 invocations (iam: STS exchanges; scram: reads)",
    "credential_reads": "credential checks per environment (all its invocations)",
    "credential_reads_per_invocation": "credential checks per invocation",
    "invocations": "invocations per environment per round",
    "errors": "failed invocations",
}
SCALAR_FIGURES = tuple(FIGURE_LABELS)  # every figure summarised over rounds, in report order
# the figures both ratios compare: warm latency, cold start and import time
TIMINGS = ("get_p50_ms", "get_p95_ms", "post_p50_ms", "post_p95_ms", "cold_start_ms", "import_ms")
RATIOS = {
    "counter_example/handler": (*TIMINGS, "conns_opened_per_1000"),
    "handler/floor": (*TIMINGS, "rss_peak_mb"),
    "floor/direct": ("get_p50_ms", "post_p50_ms"),
    "handler/counter_example": ("cold_start_ms",),  # a target: a reused client costs no cold start
}
PATTERN_LABELS = {
    "handler": "rendered handler",
    "counter_example": "counter-example",
    "floor": "floor",
    "direct": "direct pymongo",
    "noop": "runtime path alone (no-op handler)",
}


def summarize_mode(mode_results):
    """Add `summary` (pattern -> figure -> spread) and `ratios` (pair -> figure -> spread)."""
    rounds = mode_results["rounds"]
    summary = {}
    for pattern in PATTERN_LABELS:
        summary[pattern] = {}
        for figure in SCALAR_FIGURES:
            values = [rnd["patterns"].get(pattern, {}).get(figure) for rnd in rounds]
            if any(value is not None for value in values):
                summary[pattern][figure] = spread(values)
    ratios = {}
    for name, figures in RATIOS.items():
        numerator, denominator = name.split("/")
        ratios[name] = {}
        for figure in figures:
            values = [
                ratio(rnd["patterns"].get(numerator, {}).get(figure), rnd["patterns"].get(denominator, {}).get(figure))
                for rnd in rounds
            ]
            ratios[name][figure] = spread(values)
    mode_results["summary"] = summary
    mode_results["ratios"] = ratios
    return mode_results
