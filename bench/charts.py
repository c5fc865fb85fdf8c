"""PNG charts from the benchmark's JSON (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from bench.stats import percentile
from bench.targets import RSS_LIMIT_MB

COLORS = {
    "handler": "#13aa52",  # MongoDB green: the rendered handler
    "counter_example": "#d1495b",
    "floor": "#3d5a80",
    "direct": "#8d99ae",
    "noop": "#e0a458",
}
LABELS = {
    "handler": "rendered handler",
    "counter_example": "counter-example (new client per call)",
    "floor": "floor (minimal handler)",
    "direct": "direct pymongo (no Lambda runtime)",
    "noop": "runtime path alone (no-op handler)",
}


LOG_TICKS = (0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000)
STYLES = {"handler": ("-", 3.2), "floor": ("--", 1.6), "counter_example": ("-", 2.0)}


def _log_ticks(axis, which="x"):
    """Plain-number ticks on a log axis (1, 2, 5, 10, ...) instead of 2x10^0 minor labels."""
    target = axis.xaxis if which == "x" else axis.yaxis
    target.set_major_locator(FixedLocator(LOG_TICKS))
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def connections(results, path):
    """Cumulative connections the server saw opened versus invocations, per auth mode."""
    modes = list(results["modes"])
    figure, axes = plt.subplots(1, len(modes), figsize=(6.2 * len(modes), 4.2), squeeze=False)
    for axis, mode in zip(axes[0], modes, strict=True):
        first_round = results["modes"][mode]["rounds"][0]["patterns"]
        for pattern in ("counter_example", "handler", "floor"):
            series = first_round.get(pattern, {}).get("conn_series") or []
            if not series:
                continue
            xs = [point[0] for point in series]
            ys = [point[1] for point in series]
            style, width = STYLES[pattern]
            axis.step(xs, ys, style, where="post", color=COLORS[pattern], label=LABELS[pattern], linewidth=width)
            horizon = max(1000, xs[-1])
            if xs[-1] < horizon and xs[-1] > 1:  # the measured rate carried on to 1000 calls
                rate = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
                projected = ys[-1] + rate * (horizon - xs[-1])
                axis.plot([xs[-1], horizon], [ys[-1], projected], ":", color=COLORS[pattern], linewidth=1.5)
                axis.annotate(
                    f"{ys[-1]} opened in {xs[-1]} calls\n(dotted: the same rate, ~{projected:.0f} per {horizon})",
                    (xs[-1], ys[-1]),
                    textcoords="offset points",
                    xytext=(10, -30),
                    ha="left",
                    color=COLORS[pattern],
                    fontsize=8,
                )
            else:
                axis.annotate(
                    f"{LABELS[pattern].split(' (')[0]}: {ys[-1]} opened in {xs[-1]} calls",
                    (xs[-1], ys[-1]),
                    textcoords="offset points",
                    xytext=(-4, 6 if pattern == "handler" else -12),
                    ha="right",
                    color=COLORS[pattern],
                    fontsize=8,
                )
        axis.set_yscale("symlog", linthresh=10)
        axis.set_ylim(0, None)
        axis.set_xlabel("invocations of one execution environment")
        axis.set_ylabel("connections opened (cumulative)")
        axis.set_title(f"auth_mode={mode}: connections the server saw opened")
        axis.grid(True, alpha=0.3)
        axis.legend(loc="center right", fontsize=8)
    return _save(figure, path)


def latency(results, path):
    """Warm latency distributions, GET and POST, every pattern, per auth mode (log scale)."""
    modes = list(results["modes"])
    figure, axes = plt.subplots(len(modes), 2, figsize=(11, 3.6 * len(modes)), squeeze=False)
    patterns = ("noop", "direct", "floor", "handler", "counter_example")
    for row, mode in enumerate(modes):
        rounds = results["modes"][mode]["rounds"]
        for column, (key, title) in enumerate((("get_ms", "GET /items/{id}"), ("post_ms", "POST /items"))):
            axis = axes[row][column]
            data, labels, colors = [], [], []
            for pattern in patterns:
                samples = [value for rnd in rounds for value in rnd["patterns"].get(pattern, {}).get(key, [])]
                if samples:
                    data.append(samples)
                    labels.append(LABELS[pattern].split(" (")[0])
                    colors.append(COLORS[pattern])
            if not data:
                axis.set_visible(False)
                continue
            parts = axis.violinplot(data, vert=False, showextrema=False, widths=0.85)
            for body, color in zip(parts["bodies"], colors, strict=True):
                body.set_facecolor(color)
                body.set_alpha(0.55)
            for index, samples in enumerate(data, start=1):
                p50, p95 = percentile(samples, 50), percentile(samples, 95)
                axis.plot([p50], [index], "k|", markersize=14)
                axis.plot([p95], [index], "k|", markersize=8, alpha=0.6)
                axis.annotate(f"p50 {p50:.2f} ms", (p50, index), xytext=(4, 7), textcoords="offset points", fontsize=8)
            axis.set_yticks(range(1, len(labels) + 1), labels)
            axis.set_xscale("log")
            _log_ticks(axis, "x")
            axis.set_xlabel("ms per invocation, log scale (all rounds; ticks: p50, p95)")
            axis.set_title(f"auth_mode={mode}: warm {title}")
            axis.grid(True, axis="x", alpha=0.3)
    return _save(figure, path)


def memory_sizes(results, path):
    """Cold start and warm GET latency of the handler versus the memory size's CPU share."""
    view = results.get("memory_sizes") or {}
    points = view.get("sizes") or []
    if not points:
        return None
    figure, (cold_axis, warm_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = [point["memory_mb"] for point in points]
    ticks = [f"{point['memory_mb']}\n{point['vcpu']:.0%}" for point in points]

    def bars(axis, key, style, label):
        values = [point[key]["median"] for point in points]
        low = [point[key]["median"] - point[key]["min"] for point in points]
        high = [point[key]["max"] - point[key]["median"] for point in points]
        axis.errorbar(sizes, values, yerr=[low, high], fmt=style, color=COLORS["handler"], capsize=3, label=label)

    bars(cold_axis, "cold_start_ms", "o-", "cold start")
    bars(warm_axis, "get_p50_ms", "o-", "warm GET p50")
    bars(warm_axis, "get_p95_ms", "s--", "warm GET p95")
    for axis, title in ((cold_axis, "cold start (spawn to first response)"), (warm_axis, "warm GET /items/{id}")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        _log_ticks(axis, "y")
        axis.set_xticks(sizes, ticks)
        axis.minorticks_off()
        axis.set_xlabel("memory_size, MB / share of one vCPU")
        axis.set_ylabel("ms (log scale)")
        axis.set_title(f"handler ({view.get('auth_mode')}): {title}")
        axis.grid(True, alpha=0.3)
        axis.legend()
    return _save(figure, path)


def memory_growth(results, path):
    """Resident memory of one environment versus invocations, per pattern and auth mode."""
    modes = list(results["modes"])
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    styles = {mode: style for mode, style in zip(modes, ("-", "--", ":"), strict=False)}
    for mode in modes:
        first_round = results["modes"][mode]["rounds"][0]["patterns"]
        for pattern in ("handler", "floor", "counter_example"):
            series = first_round.get(pattern, {}).get("rss_series") or []
            if series:
                axis.plot(
                    [point[0] for point in series],
                    [point[1] for point in series],
                    styles[mode],
                    color=COLORS[pattern],
                    label=f"{LABELS[pattern].split(' (')[0]}, {mode}",
                )
    axis.axhline(RSS_LIMIT_MB, color="grey", linewidth=1)
    axis.annotate(
        f"{RSS_LIMIT_MB} MB: the smallest memory_size",
        (1, RSS_LIMIT_MB),
        xytext=(4, -12),
        textcoords="offset points",
        fontsize=8,
    )
    axis.set_ylim(0, 140)
    axis.set_xlabel("invocations of one execution environment")
    axis.set_ylabel("resident memory, MB")
    axis.set_title("resident memory of the runtime process")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def tls(results, path):
    """Warm p50 (bars, min-max over rounds) and p95 (ticks) per pattern, TLS beside plain."""
    modes = [mode for mode, data in results["modes"].items() if (data.get("tls") or {}).get("summary")]
    if not modes:
        return None
    figure, axes = plt.subplots(len(modes), 2, figsize=(11, 3.8 * len(modes)), squeeze=False)
    patterns, width = ("handler", "counter_example", "floor"), 0.38
    for row, mode in enumerate(modes):
        view = results["modes"][mode]["tls"]
        for column, (key, title) in enumerate((("get", "GET /items/{id}"), ("post", "POST /items"))):
            axis = axes[row][column]
            for offset, transport, alpha, hatch in ((-width / 2, "tls", 0.9, None), (width / 2, "plain", 0.45, "//")):
                for index, pattern in enumerate(patterns):
                    p50 = view["summary"][transport][pattern][f"{key}_p50_ms"]
                    p95 = view["summary"][transport][pattern][f"{key}_p95_ms"]
                    if p50["median"] is None:
                        continue
                    x = index + offset
                    error = [[p50["median"] - p50["min"]], [p50["max"] - p50["median"]]]
                    axis.bar(x, p50["median"], width, color=COLORS[pattern], alpha=alpha, hatch=hatch, edgecolor="k")
                    axis.errorbar(x, p50["median"], yerr=error, fmt="none", ecolor="k", capsize=3, linewidth=1)
                    if p95["median"] is not None:
                        axis.plot([x], [p95["median"]], "k_", markersize=14)
                    top = max(value for value in (p50["max"], p95["median"]) if value is not None)
                    axis.annotate(
                        f"{'TLS' if transport == 'tls' else 'plain'}\n{p50['median']:.2f}",
                        (x, top),
                        xytext=(0, 4),
                        textcoords="offset points",
                        ha="center",
                        fontsize=7,
                    )
            axis.set_xticks(range(len(patterns)), [LABELS[pattern].split(" (")[0] for pattern in patterns])
            axis.set_yscale("log")
            axis.set_ylim(0.5, axis.get_ylim()[1] * 2)  # room for the labels above the p95 ticks
            _log_ticks(axis, "y")
            axis.set_ylabel("ms per invocation, log scale")
            axis.set_title(f"auth_mode={mode}: warm {title} p50 (bars), p95 (ticks)", fontsize=10)
            axis.grid(True, axis="y", alpha=0.3)
    figure.suptitle(
        f"TLS (solid) vs plain (hatched): the local {results['modes'][modes[0]]['tls']['members']}-member replica set",
        fontsize=11,
    )
    return _save(figure, path)


def observability(results, path):
    """Warm GET p50 of each observability variant, per auth mode, against the floor."""
    modes = [mode for mode, data in results["modes"].items() if (data.get("observability") or {}).get("summary")]
    if not modes:
        return None
    names = list(results["modes"][modes[0]]["observability"]["summary"])
    figure, axis = plt.subplots(figsize=(10, 0.5 * len(names) + 1.8))
    height = 0.8 / len(modes)
    for index, mode in enumerate(modes):
        summary = results["modes"][mode]["observability"]["summary"]
        ys = [position + index * height for position in range(len(names))]
        values = [summary[name]["get_p50_ms"] for name in names]
        color = COLORS["handler"] if index == 0 else COLORS["floor"]
        axis.barh(ys, values, height=height, color=color, label=f"auth_mode={mode}")
        for y, name, value in zip(ys, names, values, strict=True):
            note = f"{value:.2f} ms, {summary[name]['over_floor']:.2f}x floor"
            axis.annotate(note, (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    labels = [name.replace("_", " ") for name in names]
    axis.set_yticks([position + 0.4 - height / 2 for position in range(len(names))], labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, axis.get_xlim()[1] * 1.25)
    axis.set_xlabel("warm GET /items/{id} p50, ms (the runtime path included)")
    axis.set_title("What each part of the handler's observability costs a warm GET", fontsize=11)
    axis.grid(True, axis="x", alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def cold_waves(results, path):
    """Each wave's share of 2xx answers and of admissions spent on attempts nobody waited for."""
    modes = [mode for mode, data in results["modes"].items() if (data.get("cold_waves") or {}).get("waves")]
    if not modes:
        return None
    names = [name for name, wave in results["modes"][modes[0]]["cold_waves"]["waves"].items() if "skipped" not in wave]
    figure, (ok_axis, waste_axis) = plt.subplots(1, 2, figsize=(12, 0.55 * len(names) + 2.2), sharey=True)
    height = 0.8 / len(modes)
    for index, mode in enumerate(modes):
        waves = results["modes"][mode]["cold_waves"]["waves"]
        ys = [position + index * height for position in range(len(names))]
        ok = [100 * waves[name]["ok"] / waves[name]["environments"] for name in names]
        wasted = [
            100
            * (waves[name]["primary_abandoned"] + waves[name]["primary_wasted"])
            / max(1, waves[name]["primary_admissions"])
            for name in names
        ]
        color = COLORS["handler"] if index == 0 else COLORS["floor"]
        ok_axis.barh(ys, ok, height=height, color=color, label=f"auth_mode={mode}")
        waste_axis.barh(ys, wasted, height=height, color=color, label=f"auth_mode={mode}")
        for y, name in zip(ys, names, strict=True):
            last = waves[name]["last_ok_caller_ms"]
            note = f"{waves[name]['ok']}/{waves[name]['environments']}"
            note += f", last {last / 1000:.1f} s" if last else ""
            ok_axis.annotate(note, (1, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    labels = [results["modes"][modes[0]]["cold_waves"]["waves"][name]["label"] for name in names]
    ok_axis.set_yticks([position + 0.4 - height / 2 for position in range(len(names))], labels, fontsize=8)
    ok_axis.invert_yaxis()
    ok_axis.set_xlim(0, 100)
    ok_axis.set_xlabel("environments whose first request answered 2xx, %")
    waste_axis.axvline(10, color=COLORS["counter_example"], linestyle="--", linewidth=1, label="10% (the aim)")
    waste_axis.set_xlabel("primary's admissions spent on attempts given up, %")
    for axis in (ok_axis, waste_axis):
        axis.grid(True, axis="x", alpha=0.3)
    waste_axis.legend(fontsize=8)
    budget = results["modes"][modes[0]]["cold_waves"]["budget"]
    figure.suptitle(
        f"Cold waves on {budget['tier']}: environments starting at once, each a process, "
        f"{budget['new_connections_per_second']} new connections/s budgeted",
        fontsize=11,
    )
    return _save(figure, path)


def draw_all(results, directory):
    directory.mkdir(parents=True, exist_ok=True)
    made = {
        "connections": connections(results, directory / "bench-connections.png"),
        "latency": latency(results, directory / "bench-latency.png"),
        "memory": memory_growth(results, directory / "bench-memory.png"),
        "memory_sizes": memory_sizes(results, directory / "bench-memory-sizes.png"),
        "tls": tls(results, directory / "bench-tls.png"),
        "cold_waves": cold_waves(results, directory / "bench-cold-waves.png"),
        "observability": observability(results, directory / "bench-observability.png"),
    }
    return {name: path for name, path in made.items() if path is not None}
