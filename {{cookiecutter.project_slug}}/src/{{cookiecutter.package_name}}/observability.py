"""The function's metrics and traces (Powertools), created once per environment as the logger is.

metrics      CloudWatch embedded metric format: each flush prints one JSON line to stdout, which
             CloudWatch Logs turns into metrics. Namespace POWERTOOLS_METRICS_NAMESPACE (required at
             start-up: Powertools refuses to flush without one), dimension service from
             POWERTOOLS_SERVICE_NAME; template.yaml sets both and its alarms use the same.
tracer       X-Ray, active in Lambda only (Powertools switches it off where LAMBDA_TASK_ROOT is
             unset): one subsegment per invocation, the handler's, annotated with the route and,
             when it opened any, the connections it opened, and marked as a fault when the
             database failed it. Every
             request makes one database operation, so a subsegment of its own would restate the
             handler's; a subsegment per database command (pymongo patched, without the
             documents) costs about 0.1 ms of CPU per operation, so it is off unless
             TRACE_DATABASE_COMMANDS=true (README.md, "Metrics and alarms"). An auth mode that
             calls AWS services patches botocore itself (auth.py). The SDK parses the trace
             header once per invocation instead of seven times (TraceHeaderParsedOnce).
connections  counts the connections the MongoClient's pool opens; database.py registers it on the
             client, and an invocation that opened any publishes their count as
             MongoConnectionsCreated. A warm one opens none and publishes nothing: a zero adds
             nothing to the alarm's sum, and skipping it saves the flush (about 50 µs) and a log
             line on nearly every invocation.

app.py wraps the handler in per_invocation(); routes.py records a database failure on the trace.
"""

import functools
import os
import threading
import warnings
from collections.abc import Callable

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_xray_sdk.core.lambda_launcher import LAMBDA_TRACE_HEADER_KEY, LambdaContext
from pymongo import monitoring

from .config import required

CONNECTIONS_CREATED = "MongoConnectionsCreated"

metrics = Metrics(
    namespace=required(
        os.environ,
        "POWERTOOLS_METRICS_NAMESPACE",
        "template.yaml sets the CloudWatch namespace of the metrics, which its alarms read",
    )
)
# log_metrics warns on every flush with nothing to publish, which is, by design, most of them
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
# Nothing patched by default (see above); an auth mode whose function calls AWS itself patches
# botocore in its auth.py.
TRACE_DATABASE_COMMANDS = os.environ.get("TRACE_DATABASE_COMMANDS", "").strip().lower() == "true"
tracer = Tracer(auto_patch=False)
if TRACE_DATABASE_COMMANDS:
    tracer.patch(["pymongo"])


class TraceHeaderParsedOnce(LambdaContext):
    """The X-Ray SDK's Lambda context, parsing the invocation's trace header once, not each time.

    Before every look-up of the current segment or subsegment, seven per invocation, the SDK
    reads _X_AMZN_TRACE_ID and parses it again to see whether a new invocation began
    (aws_xray_sdk/core/lambda_launcher.py, _refresh_context): about 20 µs of CPU per invocation,
    sampled or not. This context does the SDK's check in full when the header or the segment
    changed since it last did, and nothing otherwise: the check would find the same segment for
    the same header, so what is traced is the same."""

    def _refresh_context(self) -> None:
        header = os.environ.get(LAMBDA_TRACE_HEADER_KEY)
        segment = getattr(self._local, "segment", None)
        checked_header, checked_segment = getattr(self._local, "checked", (None, None))
        if (
            header is not None
            and header == checked_header
            and segment is not None
            and segment is checked_segment
        ):
            return
        super()._refresh_context()
        self._local.checked = (header, getattr(self._local, "segment", None))


# Powertools leaves the recorder outside Lambda (and with tracing disabled) on a plain context.
if isinstance(getattr(tracer.provider, "context", None), LambdaContext):
    tracer.provider.configure(context=TraceHeaderParsedOnce())


class ConnectionCounter(monitoring.ConnectionPoolListener):
    """Counts connection_created events: connections the client opened to serve operations.

    pymongo publishes pool events (CMAP) for the application pools only: a monitor's pool is
    created with is_sdam=True, which turns publishing off (pymongo/pool_shared.py), so the
    monitoring connection of each server is never counted here. The event comes when the pool
    starts opening a connection, before the TCP connect (pymongo/synchronous/pool.py), so an
    attempt that fails counts too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._created = 0
        self._taken = 0

    @property
    def created(self) -> int:
        """Connections opened since the environment started."""
        return self._created

    def take(self) -> int:
        """Connections opened since the last take (the whole environment's, the first time)."""
        with self._lock:
            count, self._taken = self._created - self._taken, self._created
        return count

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        with self._lock:
            self._created += 1

    # Every other pool event is of no interest; pymongo calls each, so each must exist.
    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        pass

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        pass

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        pass

    def connection_check_out_started(self, event: monitoring.ConnectionCheckOutStartedEvent):
        pass

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        pass

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        pass

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        pass


connections = ConnectionCounter()


def per_invocation(handler: Callable[[dict, object], dict]) -> Callable[[dict, object], dict]:
    """What every invocation records, whatever its outcome: on the handler's trace subsegment its
    route, as an annotation; and when it opened connections, their count as
    MongoConnectionsCreated, which metrics.log_metrics, the decorator outside this one, then
    flushes, and as the annotations connections_created and new_connection (one look-up of the
    subsegment for all). A warm invocation opens none and records only its route: the X-Ray SDK
    checks every annotation key character by character, about 10 µs of CPU for those two, which
    would say nothing a missing annotation does not."""

    @functools.wraps(handler)
    def record(event: dict, context: object) -> dict:
        try:
            return handler(event, context)
        finally:
            opened = connections.take()
            route = str(event.get("routeKey", ""))
            if opened:
                metrics.add_metric(CONNECTIONS_CREATED, MetricUnit.Count, opened)
                annotate(route=route, connections_created=opened, new_connection=True)
            else:
                annotate(route=route)

    return record


def annotate(**annotations) -> None:
    """Put these annotations on the current trace subsegment (the handler's), if it is traced."""
    subsegment = tracer.provider.current_subsegment()
    if subsegment is not None:
        for name, value in annotations.items():
            subsegment.put_annotation(name, value)


def record_failure(error: BaseException) -> None:
    """Mark the handler's trace subsegment as a fault with this error (a 503 is a response, so
    nothing else would): the traces of failed requests are then found by their fault."""
    subsegment = tracer.provider.current_subsegment()
    if subsegment is not None:
        subsegment.add_exception(error, stack=[], remote=False)
