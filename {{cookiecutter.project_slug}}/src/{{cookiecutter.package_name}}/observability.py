"""The function's metrics and traces (Powertools), created once per environment as the logger is.

metrics      CloudWatch embedded metric format: each flush prints one JSON line to stdout, which
             CloudWatch Logs turns into metrics. Namespace POWERTOOLS_METRICS_NAMESPACE (required at
             start-up: Powertools refuses to flush without one), dimension service from
             POWERTOOLS_SERVICE_NAME; template.yaml sets both and its alarms use the same.
tracer       X-Ray, active in Lambda only (Powertools switches it off where LAMBDA_TASK_ROOT is
             unset). It patches pymongo, a subsegment per database command without the documents;
             an auth mode that calls AWS services patches botocore itself (auth.py).
connections  counts the connections the MongoClient's pool opens; database.py registers it on the
             client, and every invocation publishes its count as MongoConnectionsCreated.

app.py wraps the handler in per_invocation(); database.run is one database_subsegment() a call.
"""

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
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
# pymongo only: an auth mode whose function calls AWS itself patches botocore in its auth.py
tracer = Tracer(patch_modules=("pymongo",))


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
    """What every invocation records, whatever its outcome: its route as a trace annotation, and
    the connections opened during it as MongoConnectionsCreated (0 on a warm invocation), which
    metrics.log_metrics, the decorator outside this one, then flushes."""

    @functools.wraps(handler)
    def record(event: dict, context: object) -> dict:
        tracer.put_annotation("route", str(event.get("routeKey", "")))
        try:
            return handler(event, context)
        finally:
            metrics.add_metric(CONNECTIONS_CREATED, MetricUnit.Count, connections.take())

    return record


@contextmanager
def database_subsegment() -> Iterator[None]:
    """A subsegment `## database` around one database operation, which holds the commands' own
    subsegments and records its error; annotated with the connections opened meanwhile."""
    before = connections.created
    with tracer.provider.in_subsegment("## database") as subsegment:
        try:
            yield
        finally:
            opened = connections.created - before
            subsegment.put_annotation("connections_created", opened)
            subsegment.put_annotation("new_connection", opened > 0)
