"""The targets of the issue, judged from the summarised figures of each auth mode.

Structural targets (connections per 1000 invocations, memory growth and peak, failures,
the load scenario) must hold in every round, so they are judged on the worst round.
Timing targets are ratios, judged on the median of the per-round ratios: a single round's
timings belong to the machine as much as to the code.
"""

RSS_LIMIT_MB = 128
RSS_HEADROOM_MB = 96  # "well under 128 MB": at most three quarters of the smallest memory size
EVERY_ROUND, MEDIAN = "every round", "median of per-round ratios"


def _summary(key, pattern="handler"):
    return lambda data: data["summary"][pattern].get(key)


def _ratio(pair, key):
    return lambda data: data["ratios"][pair][key]


# (target, the only auth mode it applies to or None, its figure, rule, met?, judged on)
FIGURE_TARGETS = (
    (
        "handler: connections opened per 1000 warm invocations of one environment",
        None,
        _summary("conns_opened_per_1000"),
        "≤ 2",
        lambda figure: figure["max"] <= 2,
        EVERY_ROUND,
    ),
    (
        "counter-example: connections opened per invocation",
        None,
        _summary("conns_opened_per_invocation", "counter_example"),
        "≥ 1",
        lambda figure: figure["min"] >= 1,
        EVERY_ROUND,
    ),
    (
        "warm GET p50: counter-example / handler",
        "scram",
        _ratio("counter_example/handler", "get_p50_ms"),
        "≥ 8",
        lambda figure: figure["median"] >= 8,
        MEDIAN,
    ),
    (
        "warm GET p50: handler / floor",
        None,
        _ratio("handler/floor", "get_p50_ms"),
        "≤ 1.3",
        lambda figure: figure["median"] <= 1.3,
        MEDIAN,
    ),
    (
        "handler: resident memory growth from invocation 100 to 1000, %",
        None,
        _summary("rss_growth_pct"),
        "< 5",
        lambda figure: figure["max"] < 5,
        EVERY_ROUND,
    ),
    (
        "handler: peak resident memory, MB",
        None,
        _summary("rss_peak_mb"),
        f"well under {RSS_LIMIT_MB} (≤ {RSS_HEADROOM_MB})",
        lambda figure: figure["max"] <= RSS_HEADROOM_MB,
        EVERY_ROUND,
    ),
    (
        "cold start: handler / counter-example",
        None,
        _ratio("handler/counter_example", "cold_start_ms"),
        "≤ 1.3",
        lambda figure: figure["median"] <= 1.3,
        MEDIAN,
    ),
)


def _target(name, mode, rule, summary, met, how):
    return {"target": name, "auth_mode": mode, "rule": rule, "figure": summary, "met": met, "judged_on": how}


def evaluate_targets(results):
    """Every target of the issue, judged from the figures (structural ones on every round)."""
    targets = []
    for mode, data in results["modes"].items():
        for name, only_mode, figure_of, rule, met, how in FIGURE_TARGETS:
            figure = figure_of(data)
            if figure and figure["n"] and only_mode in (None, mode):
                targets.append(_target(name, mode, rule, figure, met(figure), how))
        errors = data["summary"]["handler"].get("errors")
        if errors and errors["n"]:
            targets.append(_failures_target(mode, data["summary"]))
        if data.get("load"):
            targets.append(_load_target(mode, data["load"]))
    results["targets"] = targets
    return targets


def _failures_target(mode, summary):
    """No invocation of the three patterns failed, in the worst round of each."""
    failed = sum(summary[p]["errors"]["max"] for p in ("handler", "counter_example", "floor") if "errors" in summary[p])
    figure = {"median": failed, "min": failed, "max": failed, "q1": failed, "q3": failed, "n": 1}
    return _target("no invocation failed (every pattern, every round)", mode, "0", figure, failed == 0, EVERY_ROUND)


def _load_target(mode, load):
    peak = load["peak_live_connections"]
    return _target(
        "load: every acknowledged write stored, no invocation failed, "
        "live connections ≤ environments x (1 + maxPoolSize)",
        mode,
        f"≤ {load['connection_bound']}",
        {"median": peak, "n": 1, "min": peak, "max": peak},
        load["all_acknowledged_stored"] and load["failed_invocations"] == 0 and load["within_bound"],
        f"{load['acknowledged_writes_stored']}/{load['acknowledged_writes']} acknowledged writes "
        f"stored, {load['failed_invocations']} failed, peak live {peak}",
    )
