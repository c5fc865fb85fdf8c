"""The AWS Lambda Runtime API, enough to drive the real runtime client (awslambdaric).

    api = RuntimeAPI(); api.start()        # RuntimeAPI(sampled=False): traces not sampled
    api.address                          # host:port for AWS_LAMBDA_RUNTIME_API
    result = api.invoke(event, timeout_ms=3000)
    result.status                        # "success", "error" (function error), "timeout", or
                                         # "refused" (an event over MAX_REQUEST_BYTES, never sent)
    result.payload                       # the decoded JSON response (or error document)
    result.response_bytes                # the size of what the runtime posted
    result.elapsed_ms, result.timeout_ms, result.deadline_ms, result.margin_ms
    result.waited_ms                     # queued until the runtime asked for it (start-up)
    api.wait_init_error(5)               # the document posted to /runtime/init/error, or None
    api.runtime_waiting.wait(10)         # the runtime has finished start-up and asked for work
    api.snapshot_taken.wait(10)          # SnapStart: before-snapshot hooks done, restore awaited
    api.restore()                        # ...restore it now (GET /runtime/restore/next answers)
    api.wait_restore_error(5)            # the document posted to /runtime/restore/error, or None
    api.stop()

Invocations are served one at a time, in order, as Lambda does for one execution environment:
GET /2018-06-01/runtime/invocation/next hands out the next event with the Lambda-Runtime-*
headers (the deadline is epoch milliseconds; the trace header is a sampled one, as with active
tracing for the requests X-Ray samples, or with sampled=False one that is not, as for the rest),
and POST .../<id>/response or .../<id>/error
completes it. As in Lambda, the timeout clock starts when the runtime takes the event (after the
process has started up, which may take up to INIT_TIMEOUT_S); a response that does not arrive by the
deadline makes the result "timeout".

SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start), as the Runtime API reference has it
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html, "Restore" and "Restore error"):
once its before-snapshot hooks have run, the runtime asks GET /runtime/restore/next, which Lambda
answers 200 only in an environment restored from the snapshot; here, when the test calls
restore(). The runtime then runs its after-restore hooks and either asks for its first
invocation or reports their failure with POST /runtime/restore/error (202; the error type in the
Lambda-Runtime-Function-Error-Type header, Runtime.AfterRestoreError). awslambdaric 4.2.2 makes
exactly these two calls (lambda_runtime_client.py, restore_next and report_restore_error).

Lambda's payload limits hold here as there: an event over MAX_REQUEST_BYTES is refused before the
function sees it, and a response over MAX_RESPONSE_BYTES becomes an error result
(Function.ResponseSizeTooLarge) while the runtime's post is answered 413, as the Runtime API does.
Events are sent as compact UTF-8 JSON: how API Gateway encodes the events it sends Lambda is not
documented, and this is the smallest encoding, so an event refused here is refused there too (if
API Gateway escapes non-ASCII text, Lambda refuses some that pass here). The limits are stated here,
from AWS, not imported from the function: the tests hold the function to them.
"""

import itertools
import json
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:local"
LATE_GRACE_MS = 1000
INIT_TIMEOUT_S = 10
# Lambda quotas: "6 MB each for request and response (synchronous)"
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). The response limit
# exactly is 6 MiB and 100 bytes (MaxPayloadSize in aws/aws-lambda-runtime-interface-emulator
# internal/lambda/interop/model.go; rapidcore/server.go refuses a longer response and
# invocationresponse.go answers the runtime 413), the figure Lambda's own error names. The
# request limit is 6 MiB: Invoke's RequestTooLargeException for a larger payload says "Request
# must be smaller than 6291456 bytes for the InvokeFunction operation" (as users report it; AWS's
# pages say 6 MB).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
MAX_REQUEST_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    status: str
    payload: Any
    elapsed_ms: float
    timeout_ms: int
    deadline_ms: int
    waited_ms: float
    response_bytes: int = 0

    @property
    def margin_ms(self) -> float:
        """How long before the deadline the response arrived (negative: after it)."""
        return self.timeout_ms - self.elapsed_ms


@dataclass
class _Pending:
    request_id: str
    body: bytes
    timeout_ms: int
    queued: float
    deadline_ms: int = 0
    started: float = 0.0
    cancelled: bool = False
    taken: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    status: str = "timeout"
    payload: Any = None
    response_bytes: int = 0
    finished: float = 0.0


class RuntimeAPI:
    def __init__(self, function_arn: str = FUNCTION_ARN, sampled: bool = True) -> None:
        self.function_arn = function_arn
        self.sampled = sampled
        self.invocations = 0
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._pending: dict[str, _Pending] = {}
        self._init_error: dict | None = None
        self._init_error_posted = threading.Event()
        self._stopping = threading.Event()
        self.runtime_waiting = threading.Event()  # the runtime has started up and asked for work
        self.snapshot_taken = threading.Event()  # SnapStart: the runtime awaits its restore
        self._restored = threading.Event()
        self._restore_error: dict | None = None
        self.restore_error_type: str | None = None
        self._restore_error_posted = threading.Event()
        self._trace_ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "RuntimeAPI":
        self._thread.start()
        return self

    def restore(self) -> None:
        """Let the runtime waiting on /runtime/restore/next go on, as a restored environment."""
        self._restored.set()

    def wait_restore_error(self, timeout: float) -> dict | None:
        self._restore_error_posted.wait(timeout)
        return self._restore_error

    def stop(self) -> None:
        self._stopping.set()
        self._restored.set()  # wakes a runtime waiting for its restore
        self._queue.put(None)  # wakes a runtime waiting for its next invocation
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: Any, timeout_ms: int = 3000) -> InvocationResult:
        """Queue one invocation and wait for its outcome (at most the timeout plus a grace)."""
        pending = _Pending(
            request_id=str(uuid.uuid4()),
            body=encode_event(event),
            timeout_ms=timeout_ms,
            queued=time.monotonic(),
        )
        if len(pending.body) > MAX_REQUEST_BYTES:
            return InvocationResult(
                request_id=pending.request_id,
                status="refused",
                payload={
                    "errorType": "RequestTooLargeException",
                    "errorMessage": f"Request must be smaller than {MAX_REQUEST_BYTES} bytes "
                    "for the InvokeFunction operation",
                },
                elapsed_ms=0.0,
                timeout_ms=timeout_ms,
                deadline_ms=0,
                waited_ms=0.0,
            )
        self._pending[pending.request_id] = pending
        self.invocations += 1
        self._queue.put(pending)
        if pending.taken.wait(INIT_TIMEOUT_S):
            pending.done.wait((timeout_ms + LATE_GRACE_MS) / 1000)
        else:
            pending.cancelled = True
        started = pending.started or time.monotonic()
        elapsed = ((pending.finished or time.monotonic()) - started) * 1000
        status = pending.status if pending.finished and elapsed <= timeout_ms else "timeout"
        return InvocationResult(
            request_id=pending.request_id,
            status=status,
            payload=pending.payload,
            elapsed_ms=elapsed,
            timeout_ms=timeout_ms,
            deadline_ms=pending.deadline_ms,
            waited_ms=(started - pending.queued) * 1000,
            response_bytes=pending.response_bytes,
        )

    def wait_init_error(self, timeout: float) -> dict | None:
        self._init_error_posted.wait(timeout)
        return self._init_error

    def _next(self) -> _Pending | None:
        self.runtime_waiting.set()
        while not self._stopping.is_set():
            pending = self._queue.get()  # blocks: a fleet of idle runtimes costs no CPU
            if pending is None:
                self._queue.put(None)  # for any other runtime still waiting
                break
            if pending.cancelled:
                continue
            pending.started = time.monotonic()
            pending.deadline_ms = int(time.time() * 1000) + pending.timeout_ms
            pending.taken.set()
            return pending
        return None

    def _complete(self, request_id: str, status: str, body: bytes) -> str:
        """Complete the invocation with what the runtime posted: "unknown" for no invocation of
        that id, "too large" for a response Lambda would not deliver (an error result instead),
        else "accepted"."""
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return "unknown"
        pending.finished = time.monotonic()
        pending.response_bytes = len(body)
        if status == "success" and len(body) > MAX_RESPONSE_BYTES:
            pending.status = "error"
            pending.payload = {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum "
                f"allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            }
            pending.done.set()
            return "too large"
        pending.status = status
        pending.payload = json.loads(body) if body else None
        pending.done.set()
        return "accepted"

    def _record_init_error(self, body: bytes) -> None:
        self._init_error = json.loads(body) if body else {}
        self._init_error_posted.set()


def encode_event(event: Any) -> bytes:
    """An event as this Runtime API sends it: compact JSON in UTF-8, nothing escaped."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _trace_header(number: int, sampled: bool) -> str:
    """An X-Ray trace header as Lambda sends it with active tracing: the trace (Root), the
    Lambda service's segment (Parent) and the sampling decision (X-Ray samples about one request
    a second and 5% of the rest; here every request is, or none)."""
    decision = 1 if sampled else 0
    return f"Root=1-{int(time.time()):08x}-{number:024x};Parent={number:016x};Sampled={decision}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A runtime process that is stopped mid-request is expected; stay quiet about it."""


def _handler_class(api: RuntimeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format, *args):
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == f"{PREFIX}/restore/next":
                api.snapshot_taken.set()
                api._restored.wait()
                if api._stopping.is_set():
                    return self._reply(500, b'{"errorMessage": "runtime API stopping"}')
                return self._reply(200)
            if self.path != f"{PREFIX}/invocation/next":
                return self._reply(404)
            pending = api._next()
            if pending is None:
                return self._reply(500, b'{"errorMessage": "runtime API stopping"}')
            return self._reply(
                200,
                pending.body,
                {
                    "Lambda-Runtime-Aws-Request-Id": pending.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(pending.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": _trace_header(next(api._trace_ids), api.sampled),
                },
            )

        def do_POST(self):
            body = self._body()
            parts = self.path.removeprefix(PREFIX).strip("/").split("/")
            if parts == ["init", "error"]:
                api._record_init_error(body)
                return self._reply(202)
            if parts == ["restore", "error"]:
                api.restore_error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                api._restore_error = json.loads(body) if body else {}
                api._restore_error_posted.set()
                return self._reply(202)
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                status = "success" if parts[2] == "response" else "error"
                outcome = api._complete(parts[1], status, body)
                if outcome == "too large":
                    message = f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                    refusal = {"errorMessage": message, "errorType": "RequestEntityTooLarge"}
                    return self._reply(413, json.dumps(refusal).encode())
                return self._reply(202 if outcome == "accepted" else 400)
            return self._reply(404)

    return Handler
