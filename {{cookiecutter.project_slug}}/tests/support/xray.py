"""A stand-in for the X-Ray daemon: it keeps the trace documents the function's X-Ray SDK sends.

    daemon = XRayDaemon().start()
    daemon.address               # host:port for AWS_XRAY_DAEMON_ADDRESS (Lambda sets it too)
    daemon.documents()           # every segment and subsegment document received, in order
    daemon.stop()

The SDK sends each document as one UDP datagram: a header line, {"format": "json", "version": 1},
then the document's JSON. Without a daemon at all the SDK's datagrams are simply lost (UDP), which
is how the other runtime-level tests run.
"""

import json
import socket
import threading


class XRayDaemon:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._received: list[dict] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def start(self) -> "XRayDaemon":
        self._thread.start()
        return self

    def documents(self) -> list[dict]:
        with self._lock:
            return list(self._received)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._socket.close()

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram = self._socket.recv(65536)
            except TimeoutError:
                continue
            header, _, body = datagram.partition(b"\n")
            if json.loads(header).get("format") == "json":
                with self._lock:
                    self._received.append(json.loads(body))
