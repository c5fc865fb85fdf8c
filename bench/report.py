"""The Markdown report: headline, targets, ratios and figures (summary.py and targets.py make them)."""

from bench.stats import fmt, fmt_spread
from bench.summary import FIGURE_LABELS, PATTERN_LABELS, RATIOS, SCALAR_FIGURES

DASH = "\N{EN DASH}"


def _times(summary, digits=2):
    """'8.7x (7.2-9.5)' for a ratio summary."""
    if not summary or summary.get("median") is None:
        return "—"
    text = f"{fmt(summary['median'], digits)}x"
    if summary["n"] > 1 and summary["min"] != summary["max"]:
        text += f" ({fmt(summary['min'], digits)}{DASH}{fmt(summary['max'], digits)})"
    return text


def headline(results):
    """A few sentences with the figures a README quotes (median over rounds, min-max spread)."""
    lines = []
    modes = results["modes"]
    per_mode = []
    for mode, data in modes.items():
        h, c = data["summary"]["handler"], data["summary"]["counter_example"]
        per_mode.append(
            f"{mode}: {fmt(h['conns_opened_per_1000']['median'])} by the handler, "
            f"{fmt(c['conns_opened_per_invocation']['median'])} per invocation by the counter-example"
        )
    lines.append("Connections opened per 1,000 invocations of one environment: " + "; ".join(per_mode) + ".")
    for mode, data in modes.items():
        r = data["ratios"]
        lines.append(
            f"Warm GET /items/{{id}} p50, auth_mode={mode}: counter-example / handler "
            f"{_times(r['counter_example/handler']['get_p50_ms'], 1)}, handler / floor "
            f"{_times(r['handler/floor']['get_p50_ms'])} (handler "
            f"{fmt(data['summary']['handler']['get_p50_ms']['median'])} ms, counter-example "
            f"{fmt(data['summary']['counter_example']['get_p50_ms']['median'])} ms, floor "
            f"{fmt(data['summary']['floor']['get_p50_ms']['median'])} ms"
            + (
                f"; the runtime path alone, a no-op handler, takes "
                f"{fmt(data['summary']['noop']['get_p50_ms']['median'])} ms of each)."
                if data["summary"].get("noop", {}).get("get_p50_ms")
                else ")."
            )
        )
    memory = [
        f"{mode}: +{fmt(data['summary']['handler']['rss_growth_pct']['median'])}% from invocation 100 to 1,000, "
        f"peak {fmt(data['summary']['handler']['rss_peak_mb']['median'], 0)} MB"
        for mode, data in modes.items()
    ]
    lines.append("Resident memory of the handler: " + "; ".join(memory) + ".")
    cold = [
        f"{_times(data['ratios']['handler/counter_example']['cold_start_ms'])} ({mode})"
        for mode, data in modes.items()
        if data["ratios"]["handler/counter_example"]["cold_start_ms"]["n"]
    ]
    if cold:
        lines.append("Cold start of the handler / the counter-example's: " + ", ".join(cold) + ".")
    for mode, data in modes.items():
        load = data.get("load")
        if load:
            lines.append(
                f"Load ({mode}): {load['environments']} environments wrote {load['acknowledged_writes']} documents "
                f"in parallel, {load['acknowledged_writes_stored']} of them stored, {load['failed_invocations']} "
                f"failed, at most {load['peak_live_connections']} connections live (bound "
                f"{load['connection_bound']})."
            )
    sizes = (results.get("memory_sizes") or {}).get("sizes") or []
    if len(sizes) >= 2:
        low, high = sizes[0], sizes[-1]
        lines.append(
            f"Memory size ({results['memory_sizes']['auth_mode']}): cold start "
            f"{fmt(low['cold_start_ms']['median'], 0)} ms at {low['memory_mb']} MB vs "
            f"{fmt(high['cold_start_ms']['median'], 0)} ms at {high['memory_mb']} MB; warm GET p95 "
            f"{fmt(low['get_p95_ms']['median'])} ms vs {fmt(high['get_p95_ms']['median'])} ms."
        )
    return lines


def _row(cells):
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown(results):
    meta = results["meta"]
    lines = [
        f"# Benchmark results ({meta['mode']} run)",
        "",
        f"- Date: {meta['date']}; run time {meta['duration_s']:.0f} s",
        f"- Machine: {meta['machine']['summary']}",
        f"- MongoDB: {meta['mongodb']}",
        f"- Rounds: {meta['rounds']} per auth mode; figures are the median over rounds, with (min{DASH}max) when "
        "they differ; ratios are taken within each round, then the median.",
        "",
        "## Targets",
        "",
        _row(["target", "auth mode", "target value", f"measured: median (min{DASH}max)", "met", "judged on"]),
        _row(["---"] * 6),
    ]
    lines[7:7] = ["## Headline", "", *[f"- {line}" for line in headline(results)], ""]
    for target in results["targets"]:
        lines.append(
            _row(
                [
                    target["target"],
                    target["auth_mode"],
                    target["rule"],
                    fmt_spread(target["figure"]),
                    "✅ yes" if target["met"] else "❌ no",
                    target["judged_on"],
                ]
            )
        )
    for mode, data in results["modes"].items():
        r = data["ratios"]
        lines += [
            "",
            f"## Ratios, auth_mode={mode}",
            "",
            _row(["figure", "counter-example / handler", "handler / floor", "floor / direct pymongo"]),
            _row(["---"] * 4),
        ]
        figures = []
        for name in RATIOS:
            figures += [figure for figure in RATIOS[name] if figure not in figures]
        for figure in figures:
            lines.append(
                _row(
                    [
                        FIGURE_LABELS[figure].removesuffix(", ms").removesuffix(", MB"),
                        fmt_spread(r["counter_example/handler"].get(figure)),
                        fmt_spread(r["handler/floor"].get(figure)),
                        fmt_spread(r["floor/direct"].get(figure)),
                    ]
                )
            )
        s = data["summary"]
        lines += [
            "",
            f"## Figures, auth_mode={mode}",
            "",
            _row(["figure", *PATTERN_LABELS.values()]),
            _row(["---"] * (len(PATTERN_LABELS) + 1)),
        ]
        for figure in SCALAR_FIGURES:
            if figure.startswith("secret_reads") and mode != "scram":
                continue
            cells = [fmt_spread(s[pattern].get(figure)) for pattern in PATTERN_LABELS]
            if any(cell != "—" for cell in cells):
                lines.append(_row([FIGURE_LABELS[figure], *cells]))
        load = data.get("load")
        if load:
            lines += [
                "",
                f"## Load, auth_mode={mode}: {load['environments']} environments writing in parallel",
                "",
                _row(["figure", "value"]),
                _row(["---", "---"]),
            ]
            for key in (
                "invocations",
                "failed_invocations",
                "acknowledged_writes",
                "acknowledged_writes_stored",
                "documents_stored_for_run",
                "max_pool_size",
                "connection_bound",
                "peak_live_connections",
                "live_connections_end",
                "connections_opened",
                "writes_per_second",
            ):
                lines.append(_row([key.replace("_", " "), fmt(load[key])]))
    view = results.get("memory_sizes") or {}
    lines += ["", "## Memory size (CPU share)", ""]
    if view.get("sizes"):
        lines += [
            f"Rendered handler, auth_mode={view['auth_mode']}, CPU limited with {view['mechanism']}; "
            f"{view['invocations']} warm GETs per size per round, {view['rounds']} round(s).",
            "",
            _row(
                [
                    "memory_size, MB",
                    "vCPU share",
                    "cold start, ms",
                    "warm GET p50, ms",
                    "warm GET p95, ms",
                    "CFS periods throttled",
                ]
            ),
            _row(["---"] * 6),
        ]
        for point in view["sizes"]:
            lines.append(
                _row(
                    [
                        point["memory_mb"],
                        f"{point['vcpu']:.3f}",
                        fmt_spread(point["cold_start_ms"], 0),
                        fmt_spread(point["get_p50_ms"]),
                        fmt_spread(point["get_p95_ms"]),
                        f"{point['throttled_share']:.0%}",
                    ]
                )
            )
    else:
        lines.append(f"Skipped: {view.get('skipped', 'not run')}")
    artifact = results.get("artifact") or {}
    lines += ["", "## Deployment artifact (sam build)", ""]
    if artifact.get("sizes"):
        lines += [_row(["auth mode", "unzipped, MB", "zipped, MB", "files"]), _row(["---"] * 4)]
        for mode, size in artifact["sizes"].items():
            if "error" in size:
                lines.append(_row([mode, "—", "—", size["error"]]))
            else:
                lines.append(_row([mode, f"{size['unzipped_mb']:.1f}", f"{size['zipped_mb']:.1f}", size["files"]]))
    else:
        lines.append(f"Skipped: {artifact.get('skipped', 'not run')}")
    return "\n".join(lines) + "\n"
