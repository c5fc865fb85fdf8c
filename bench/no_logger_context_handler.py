"""The rendered handler without one decorator: the logger's inject_lambda_context.

app.handler is the rendered routes under four decorators, outermost first: the logger's
inject_lambda_context (the request's context and correlation id on every log record), the
tracer's capture_lambda_handler, metrics.log_metrics and per_invocation. Each keeps the function it
wraps as __wrapped__ (functools.wraps), so calling app.handler.__wrapped__ runs everything but the
first: the observability view measures that decorator's cost so, as it measures the tracer's and
the metrics' by switching them off with Powertools' own variables.

The rendered package's name comes from BENCH_APP_PACKAGE (orders_service by default).
"""

import importlib
import os

_package = os.environ.get("BENCH_APP_PACKAGE", "orders_service")
_app = importlib.import_module(f"{_package}.app")
handler = _app.handler.__wrapped__
