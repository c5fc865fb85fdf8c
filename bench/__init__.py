"""Side-by-side benchmarks of the rendered Lambda handler (docs/benchmarks.md): python -m bench.

Modules, one job each:
- __main__: the CLI (arguments, machine info, orchestration, --publish)
- settings: how much a run measures (full and --quick); console: the stage line
- project: render the template for one auth mode and load its tests/support
- testbed: one auth mode's servers, function settings, events and seeded data
- environment: driving a pattern (spawn, invoke, freeze/thaw one execution environment)
- sampling: resident memory, live connections, connection and secret-read attribution
- rounds: the rounds, every pattern side by side, and each environment's figures
- load: the load scenario, environments writing in parallel
- tls, tls_testbed: the TLS view, the patterns against the local replica set with TLS and without
- memory_view: the memory-size view; cpuquota: the CFS quota that gives each size its CPU
- artifact: the sam build artifact's size
- summary, targets: summaries over rounds, ratios, and the targets judged from them
- tls_summary: the TLS view's summaries, ratios and structural checks
- headline, markdown, charts: bench.md and bench-*.png; stats: percentiles, spreads, formats
- counter_example_handler, floor_handler, noop_handler: the handlers the runtime loads
"""
