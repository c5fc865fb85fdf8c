"""bench.md: the run's targets, headline, ratios and figures as Markdown tables.

Figures are the median over rounds, with (min-max) when they differ; ratios are taken
within each round, then the median. --publish copies the same text, less its title,
into docs/benchmarks.md.
"""

from bench.headline import headline
from bench.observability_view import LABELS as OBSERVABILITY_LABELS
from bench.stats import DASH, fmt, fmt_spread
from bench.summary import FIGURE_LABELS, PATTERN_LABELS, RATIOS, SCALAR_FIGURES
from bench.tls_summary import TLS_FIGURE_LABELS, TLS_PATTERNS, TLS_RATIOS, TRANSPORT_LABELS

LOAD_FIGURES = (
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
)
MEMORY_SIZE_COLUMNS = (
    "memory_size, MB",
    "vCPU share",
    "cold start, ms",
    "warm GET p50, ms",
    "warm GET p95, ms",
    "CFS periods throttled",
)


def _row(cells):
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header, rows):
    return [_row(header), _row(["---"] * len(header)), *(_row(cells) for cells in rows)]


def markdown(results):
    lines = _preamble(results["meta"])
    lines += ["## Headline", "", *[f"- {line}" for line in headline(results)], ""]
    lines += ["## Targets", "", *_targets(results["targets"])]
    for mode, data in results["modes"].items():
        lines += ["", f"## Ratios, auth_mode={mode}", "", *_ratios(data["ratios"])]
        lines += ["", f"## Figures, auth_mode={mode}", "", *_figures(mode, data["summary"])]
        load = data.get("load")
        if load:
            lines += ["", f"## Load, auth_mode={mode}: {load['environments']} environments writing in parallel", ""]
            lines += _table(["figure", "value"], ([key.replace("_", " "), fmt(load[key])] for key in LOAD_FIGURES))
        if data.get("tls"):
            lines += ["", f"## TLS vs plain, auth_mode={mode}: the local replica set", "", *_tls(mode, data["tls"])]
        if data.get("observability"):
            lines += ["", f"## Observability, auth_mode={mode}: what each part costs a warm GET", ""]
            lines += _observability(data["observability"])
        if data.get("snapstart"):
            lines += ["", f"## SnapStart, auth_mode={mode}: a cold start with and without the snapshot", ""]
            lines += _snapstart(data["snapstart"])
        if data.get("cold_waves"):
            lines += ["", f"## Cold waves, auth_mode={mode}: the connection rate limiter", ""]
            lines += _cold_waves(data["cold_waves"])
    lines += ["", "## Memory size (CPU share)", "", *_memory_sizes(results.get("memory_sizes") or {})]
    lines += ["", "## Deployment artifact (sam build)", "", *_artifact(results.get("artifact") or {})]
    return "\n".join(lines) + "\n"


def _preamble(meta):
    load = meta.get("load_average")  # older runs have none
    machine_load = []
    if load and load.get("start"):
        start, end = (" / ".join(f"{value:.2f}" for value in load.get(key) or ()) or "—" for key in ("start", "end"))
        machine_load = [f"- Load average (1 / 5 / 15 min): {start} at the start, {end} at the end"]
    return [
        f"# Benchmark results ({meta['mode']} run)",
        "",
        f"- Date: {meta['date']}; run time {meta['duration_s']:.0f} s",
        f"- Machine: {meta['machine']['summary']}",
        *machine_load,
        f"- MongoDB: {meta['mongodb']}",
        f"- Rounds: {meta['rounds']} per auth mode; figures are the median over rounds, with (min{DASH}max) when "
        "they differ; ratios are taken within each round, then the median.",
        "",
    ]


def _targets(targets):
    header = ["target", "auth mode", "target value", f"measured: median (min{DASH}max)", "met", "judged on"]
    rows = (
        [
            target["target"],
            target["auth_mode"],
            target["rule"],
            fmt_spread(target["figure"]),
            "✅ yes" if target["met"] else "❌ no",
            target["judged_on"],
        ]
        for target in targets
    )
    return _table(header, rows)


def _ratios(ratios):
    figures = []
    for name in RATIOS:
        figures += [figure for figure in RATIOS[name] if figure not in figures]
    columns = ("counter_example/handler", "handler/floor", "floor/direct")
    rows = (
        [
            FIGURE_LABELS[figure].removesuffix(", ms").removesuffix(", MB"),
            *(fmt_spread(ratios[column].get(figure)) for column in columns),
        ]
        for figure in figures
    )
    return _table(["figure", "counter-example / handler", "handler / floor", "floor / direct pymongo"], rows)


def _figures(mode, summary):
    rows = []
    for figure in SCALAR_FIGURES:
        cells = [fmt_spread(summary[pattern].get(figure)) for pattern in PATTERN_LABELS]
        if any(cell != "—" for cell in cells):
            rows.append([FIGURE_LABELS[figure], *cells])
    return _table(["figure", *PATTERN_LABELS.values()], rows)


def _tls(mode, view):
    if not view.get("rounds"):
        return [f"Skipped: {view.get('skipped', 'not run')}"]
    summary, members = view["summary"], view["members"]
    calls = {pattern: fmt_spread(summary["tls"][pattern]["invocations"]) for pattern in TLS_PATTERNS}
    intro = (
        f"The rendered tests' replica set ({members} members on 127.0.0.1, each set in front of its own mongoeco "
        f"backend), started twice: with TLS (`{view['uri_options']['tls']}&tlsCAFile=...`) and without "
        f"(`{view['uri_options']['plain']}`); {len(view['rounds'])} round(s), each with {calls['handler']} "
        f"invocations of the handler and the floor and {calls['counter_example']} of the counter-example per "
        f"environment. On a replica set a client opens a monitoring connection to each of the {members} members "
        f"and a pool connection to the primary: {members + 1} per environment for the reused client, "
        f"{members + 1} per call for the counter-example."
    )
    checks = _table(
        ["check", "measured", "met", "judged on"],
        ([c["check"], c["figure"], "✅ yes" if c["met"] else "❌ no", c["judged_on"]] for c in view["checks"]),
    )
    ratios = view["ratios"]
    ratio_rows = (
        [
            TLS_FIGURE_LABELS[figure].removesuffix(", ms"),
            *(fmt_spread(ratios["counter_example/handler"][t].get(figure)) for t in TRANSPORT_LABELS),
            *(fmt_spread(ratios["tls/plain"][pattern].get(figure)) for pattern in TLS_PATTERNS),
        ]
        for figure in TLS_RATIOS["counter_example/handler"]
    )
    ratio_header = [
        "figure",
        *(f"counter-example / handler, {label}" for label in TRANSPORT_LABELS.values()),
        *(f"{PATTERN_LABELS[pattern]}, TLS / plain" for pattern in TLS_PATTERNS),
    ]
    columns = [(pattern, transport) for pattern in TLS_PATTERNS for transport in TRANSPORT_LABELS]
    figure_rows = []
    for figure, label in TLS_FIGURE_LABELS.items():
        cells = [fmt_spread(summary[transport][pattern].get(figure)) for pattern, transport in columns]
        if any(cell != "—" for cell in cells):
            figure_rows.append([label, *cells])
    figure_header = [
        "figure",
        *(f"{PATTERN_LABELS[pattern]}, {TRANSPORT_LABELS[transport]}" for pattern, transport in columns),
    ]
    return [
        intro,
        "",
        *checks,
        "",
        *_table(ratio_header, ratio_rows),
        "",
        *_table(figure_header, figure_rows),
    ]


def _memory_sizes(view):
    if not view.get("sizes"):
        return [f"Skipped: {view.get('skipped', 'not run')}"]
    intro = (
        f"Rendered handler, auth_mode={view['auth_mode']}, CPU limited with {view['mechanism']}; "
        f"{view['invocations']} warm GETs per size per round, {view['rounds']} round(s)."
    )
    rows = (
        [
            point["memory_mb"],
            f"{point['vcpu']:.3f}",
            fmt_spread(point["cold_start_ms"], 0),
            fmt_spread(point["get_p50_ms"]),
            fmt_spread(point["get_p95_ms"]),
            f"{point['throttled_share']:.0%}",
        ]
        for point in view["sizes"]
    )
    return [intro, "", *_table(MEMORY_SIZE_COLUMNS, rows)]


def _observability(view):
    intro = (
        "Warm GET /items/{id} p50 of the rendered handler as deployed, with one part of its observability "
        "switched off (or, for command traces, on) at a time, and of the minimal floor handler, side by side "
        f"(median of {len(view['rounds'])} round(s); differences taken within each round). The router cannot be "
        "switched off: it is most of what remains between the handler and the floor."
    )
    rows = [
        [
            OBSERVABILITY_LABELS[name],
            fmt(figures["get_p50_ms"]),
            f"{figures['over_floor']:.2f}x",
            f"{figures['minus_handler_us']:+.0f}" if name != "handler" else DASH,
        ]
        for name, figures in view["summary"].items()
    ]
    header = ["variant", "GET p50, ms", "÷ floor", "vs the handler as deployed, µs"]
    return [intro, "", *_table(header, rows), "", *_instructions(view.get("instructions") or {})]


def _instructions(counted):
    if not counted.get("per_get"):
        return [f"CPU instructions per warm GET: skipped ({counted.get('skipped', 'not run')})."]
    intro = (
        "The same variants' CPU instructions per warm GET, counted under callgrind over "
        f"{counted['invocations']} warm GETs each (bench/instructions.py): the runtime client, the handler "
        "and the driver in the environment's process, the same from run to run however busy the machine is."
    )
    rows = [
        [
            OBSERVABILITY_LABELS[name],
            f"{count / 1000:,.0f}",
            f"{counted['over_floor'][name]:.2f}x",
            f"{counted['minus_handler'][name] / 1000:+,.0f}" if name != "handler" else DASH,
        ]
        for name, count in counted["per_get"].items()
    ]
    header = ["variant", "thousand instructions per GET", "÷ floor", "vs the handler as deployed, thousands"]
    return [intro, "", *_table(header, rows)]


def _snapstart(view):
    """Each phase's median and spread, on demand beside snap_start (bench/snapstart_view.py)."""
    if "summary" not in view:
        return [f"Skipped: {view.get('skipped', 'not run')}"]
    on_demand, snap = view["summary"]["on_demand"], view["summary"]["snap_start"]
    rows = [
        ["initialisation (imports, start-up)", fmt_spread(on_demand["init_ms"]), "at publish time"],
        ["initialisation and before-snapshot hooks", "-", fmt_spread(snap["snapshot_init_ms"])],
        ["after-restore hooks (restore/next to invocation/next)", "-", fmt_spread(snap["restore_ms"])],
        [
            "first request (connect, sign in, GET)",
            fmt_spread(on_demand["first_request_ms"]),
            fmt_spread(snap["first_request_ms"]),
        ],
        ["cold start in the request's path", fmt_spread(on_demand["cold_start_ms"]), fmt_spread(snap["cold_start_ms"])],
    ]
    intro = (
        f"{view['runs']} environments of each, ms (median, spread). A restored environment's cold start here leaves "
        "out Lambda's own restore of the snapshot (Restore Duration), which only AWS can measure."
    )
    return [intro, "", *_table(["phase", "on demand", "snap_start"], rows)]


COLD_WAVE_COLUMNS = (
    "wave",
    "environments",
    "2xx",
    "other answers",
    "last 2xx, ms",
    "callers' last 2xx, ms",
    "primary admissions / needed",
    "abandoned in the queue",
    "admitted, client gone",
    "closed unserved",
)


def _cold_waves(view):
    if not view.get("waves"):
        return [f"Skipped: {view.get('skipped', 'not run')}"]
    budget, path = view["budget"], view["cold_path"]
    intro = (
        f"{budget['tier']}: reserved concurrency {budget['reserved_concurrency']} (the derived bound), "
        f"{budget['new_connections_per_second']} new connections a second budgeted of the tier's, a "
        f"{budget['cold_window_ms']} ms window less {budget['cold_path_ms']} ms for the cold path. Each environment "
        "is a process under awslambdaric; the members admit the tier's whole rate with one second of burst "
        "unless the wave says otherwise. The cold path alone (one environment, nothing queued, on loopback): "
        f"{', '.join(str(run) for run in path['runs_ms'])} ms; the budget assumes {path['assumed_cpu_ms']} ms of CPU "
        f"at one vCPU plus {path['assumed_network_ms']} ms of network."
    )
    rows = []
    for wave in view["waves"].values():
        if "skipped" in wave:
            rows.append([wave["label"], f"skipped: {wave['skipped']}", *[DASH] * (len(COLD_WAVE_COLUMNS) - 2)])
            continue
        others = ", ".join(f"{count} x {status}" for status, count in wave["statuses"].items() if status != "201")
        rows.append(
            [
                wave["label"],
                wave["environments"],
                wave["ok"],
                others or DASH,
                fmt(wave["last_ok_ms"]),
                fmt(wave["last_ok_caller_ms"]),
                f"{wave['primary_admissions']} / {wave['primary_admissions_needed']}",
                wave["primary_abandoned"],
                wave["primary_wasted"],
                wave["primary_refused"],
            ]
        )
    return [intro, "", *_table(COLD_WAVE_COLUMNS, rows)]


def _artifact(artifact):
    if not artifact.get("sizes"):
        return [f"Skipped: {artifact.get('skipped', 'not run')}"]
    rows = []
    for mode, size in artifact["sizes"].items():
        if "error" in size:
            rows.append([mode, "—", "—", size["error"]])
        else:
            rows.append([mode, f"{size['unzipped_mb']:.1f}", f"{size['zipped_mb']:.1f}", size["files"]])
    return _table(["auth mode", "unzipped, MB", "zipped, MB", "files"], rows)
