"""python -m bench [--quick] [--publish]: the side-by-side benchmarks (docs/benchmarks.md).

Renders the default project for each auth mode, then measures the rendered handler, the
counter-example and the floor under awslambdaric against the same wire server, runs the
load scenario, the TLS view (the same patterns against the rendered tests' local replica set
with TLS and without), the observability view (each part of the handler's observability
switched off in turn, sampled and unsampled traces), the cold-wave view (environments starting
cold at once against the connection rate limiter) and the memory-size view, sizes the sam build artifact, and writes to
bench/results/: bench.json, bench.md (targets and ratios) and bench-*.png. --publish also
copies the charts to docs/img/ and the figures into docs/benchmarks.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

from bench import artifact, charts
from bench.cold_waves import run_cold_wave_view
from bench.console import say
from bench.cpuquota import CpuQuota
from bench.environment import Driver
from bench.load import run_load
from bench.markdown import markdown
from bench.memory_view import memory_view
from bench.observability_view import run_observability_view
from bench.project import ROOT, render
from bench.rounds import run_rounds
from bench.settings import Settings
from bench.snapstart_view import run_snapstart_view
from bench.stats import fmt_spread
from bench.summary import summarize_mode
from bench.targets import evaluate_targets
from bench.testbed import Testbed
from bench.tls import run_tls_view
from bench.tls_summary import summarize_tls

DOCS = ROOT / "docs" / "benchmarks.md"
DOC_BEGIN = "<!-- bench:results:begin -->"
DOC_END = "<!-- bench:results:end -->"


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer calls, one-round views, no sam build")
    parser.add_argument("--rounds", type=int, help="rounds per auth mode (default 3, quick too)")
    parser.add_argument("--auth-modes", default=None, help="comma-separated (default: every auth mode of the template)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    parser.add_argument("--no-sam", action="store_true", help="skip the sam build artifact size")
    parser.add_argument("--no-load", action="store_true", help="skip the parallel-environments load scenario")
    parser.add_argument("--no-cpu-quota", action="store_true", help="skip the memory-size (CPU quota) view")
    parser.add_argument("--no-tls", action="store_true", help="skip the TLS view (the replica set, TLS and plain)")
    parser.add_argument("--no-cold-waves", action="store_true", help="skip the cold-wave view (the rate limiter)")
    parser.add_argument(
        "--no-observability", action="store_true", help="skip the observability view (each part switched off)"
    )
    parser.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count the observability variants' CPU instructions per GET under callgrind (default: full runs only)",
    )
    parser.add_argument("--no-snapstart", action="store_true", help="skip the SnapStart view (init with, without)")
    parser.add_argument("--publish", action="store_true", help="copy charts and figures into docs/")
    parser.add_argument(
        "--replot", type=Path, metavar="BENCH_JSON", help="measure nothing: redo tables and charts from a bench.json"
    )
    return parser.parse_args(argv)


def _proc_line(path, prefix):
    """The first line of a /proc file that starts with prefix, or None."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line
    except OSError:
        pass
    return None


def machine():
    """What the figures were measured on: CPU, cores, memory, kernel, Python, package versions."""
    cpu_line = _proc_line("/proc/cpuinfo", "model name")
    cpu = cpu_line.split(":", 1)[1].strip() if cpu_line else "unknown CPU"
    memory_line = _proc_line("/proc/meminfo", "MemTotal:")
    memory_gib = int(memory_line.split()[1]) / 2**20 if memory_line else None
    versions = {}
    for package in ("pymongo", "mongoeco", "awslambdaric", "aws-lambda-powertools", "boto3", "moto"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cores = os.cpu_count()
    summary = (
        f"{cpu}, {cores} cores, {memory_gib:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, pymongo {versions['pymongo']}, mongoeco {versions['mongoeco']}, "
        f"awslambdaric {versions['awslambdaric']}"
    )
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "summary": summary,
    }


def publish(results, chart_paths, markdown_text):
    image_dir = ROOT / "docs" / "img"
    image_dir.mkdir(parents=True, exist_ok=True)
    for path in chart_paths.values():
        shutil.copy2(path, image_dir / Path(path).name)
    body = markdown_text.split("\n", 1)[1].replace("\n## ", "\n### ")
    images = "\n".join(f"![{name.replace('_', ' ')}](img/{Path(path).name})" for name, path in chart_paths.items())
    block = f"{DOC_BEGIN}\n{body}\n### Charts\n\n{images}\n{DOC_END}"
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else f"# Benchmarks\n\n{DOC_BEGIN}\n{DOC_END}\n"
    pattern = re.compile(re.escape(DOC_BEGIN) + r".*?" + re.escape(DOC_END), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")
    say(f"published the charts to {image_dir.relative_to(ROOT)}/ and the figures to {DOCS.relative_to(ROOT)}")


def write_outputs(results, out, publish_to_docs):
    for data in results["modes"].values():
        summarize_mode(data)
        if data.get("tls"):
            summarize_tls(data["tls"])
    evaluate_targets(results)
    (out / "bench.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    chart_paths = charts.draw_all(results, out)
    markdown_text = markdown(results)
    (out / "bench.md").write_text(markdown_text, encoding="utf-8")
    say(
        f"wrote {out / 'bench.json'}, {out / 'bench.md'} and {len(chart_paths)} charts "
        f"in {results['meta']['duration_s']:.0f} s"
    )
    for target in results["targets"]:
        mark = "met   " if target["met"] else "MISSED"
        say(
            f"{mark} [{target['auth_mode']}] {target['target']}: "
            f"{fmt_spread(target['figure'])} (target {target['rule']})"
        )
    for mode, data in results["modes"].items():
        for check in (data.get("tls") or {}).get("checks", []):
            say(f"{'met   ' if check['met'] else 'FAILED'} [{mode}, TLS view] {check['check']}: {check['figure']}")
    if publish_to_docs:
        publish(results, chart_paths, markdown_text)


def settings_from(args):
    settings = Settings.quick_mode() if args.quick else Settings()
    if args.rounds:
        settings.rounds = args.rounds
    settings.sam = settings.sam and not args.no_sam
    settings.load = not args.no_load
    settings.cpu_quota = not args.no_cpu_quota
    settings.tls = not args.no_tls
    settings.cold_waves = not args.no_cold_waves
    settings.observability = not args.no_observability
    if args.instructions is not None:
        settings.instructions = args.instructions
    settings.snapstart = not args.no_snapstart
    return settings


def _load_average():
    """The 1-, 5- and 15-minute load averages: how busy the (possibly shared) machine was."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _meta(settings):
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if settings.quick else "full",
        "rounds": settings.rounds,
        "machine": machine(),
        "mongodb": "MONGODB_TEST_URI (figures from serverStatus)"
        if os.environ.get("MONGODB_TEST_URI")
        else "embedded mongoeco wire server behind the rendered tests' counting TCP front, 127.0.0.1",
        "settings": dict(vars(settings)),
        "load_average": {"start": _load_average()},
    }


def measure(args, settings):
    """Every stage for every auth mode: what bench.json holds, before the summaries."""
    template = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    modes = args.auth_modes.split(",") if args.auth_modes else list(template["auth_mode"])
    default_mode = template["auth_mode"][0]  # the memory-size view measures this one only
    work = args.out / "work"
    started = time.monotonic()
    results = {"meta": _meta(settings), "modes": {}}
    quota, mechanism = CpuQuota.detect() if settings.cpu_quota else (None, "--no-cpu-quota given")
    results["memory_sizes"] = {"skipped": mechanism} if quota is None else {}
    if quota is None:
        say(f"memory-size view skipped: {mechanism}")
    sam, sam_missing = (
        artifact.find_sam() if settings.sam else (None, "--quick" if settings.quick else "--no-sam given")
    )
    results["artifact"] = {"skipped": sam_missing} if sam is None else {"sizes": {}}
    try:
        for mode in modes:
            project = _measure_mode(results, mode, settings, work, quota if mode == default_mode else None, mechanism)
            if sam is not None:
                size = artifact.measure(sam, mode, project.path, work / f"sam-build-{mode}")
                results["artifact"]["sizes"][mode] = size
    finally:
        if quota is not None:
            quota.close()
    results["meta"]["duration_s"] = time.monotonic() - started
    results["meta"]["load_average"]["end"] = _load_average()
    return results


def _measure_mode(results, mode, settings, work, quota, mechanism):
    """Render the project for this auth mode; its rounds, its load, its TLS view and, given a quota,
    the memory view."""
    say(f"rendering the default project with auth_mode={mode}")
    project = render(mode, work)
    testbed = Testbed(project, settings.seed_documents, work)
    try:
        driver = Driver(testbed)
        results["modes"][mode] = {"project": str(project.path), "rounds": run_rounds(driver, settings)}
        if settings.observability:
            results["modes"][mode]["observability"] = run_observability_view(driver, settings)
        if settings.load:
            results["modes"][mode]["load"] = run_load(driver, settings)
        if settings.snapstart:
            results["modes"][mode]["snapstart"] = run_snapstart_view(driver, settings, work)
        if settings.tls:
            results["modes"][mode]["tls"] = run_tls_view(project, settings, work, testbed.local_auth)
        else:
            results["modes"][mode]["tls"] = {"skipped": "--no-tls given"}
        if quota is not None:
            results["memory_sizes"] = memory_view(driver, settings, quota, mechanism)
    finally:
        testbed.close()
    if settings.cold_waves and not os.environ.get("MONGODB_TEST_URI"):
        results["modes"][mode]["cold_waves"] = run_cold_wave_view(project, settings)
    else:
        results["modes"][mode]["cold_waves"] = {"skipped": "--no-cold-waves given, or MONGODB_TEST_URI is set"}
    return project


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:  # measure nothing: the tables and charts of a saved run
        write_outputs(json.loads(args.replot.read_text(encoding="utf-8")), args.out, args.publish)
        return 0
    write_outputs(measure(args, settings_from(args)), args.out, args.publish)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
