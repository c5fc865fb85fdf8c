"""A TCP proxy that forgets connections left idle, as a NAT gateway or a Network Load Balancer does.

    proxy = IdleResetProxy(("127.0.0.1", server_port), idle_seconds=2.0)
    proxy.port                 # where the function connects instead of the server
    proxy.connections_opened   # connections accepted so far
    proxy.resets               # connections reset because they were used after sitting idle
    proxy.close()

A connection with no data in either direction for longer than idle_seconds is forgotten, but
nobody is told: the next data the client sends on it is dropped and answered with a reset (the
socket closed with SO_LINGER 0), and the server's side is closed. That is what AWS documents for a
NAT gateway after 350 s ("it returns an RST packet to any resources behind the NAT gateway that
attempt to continue the connection", nat-gateway-troubleshooting.html). A client that checks its
idle socket for readability sees nothing wrong until it writes, which is why pymongo's own checks
do not catch it.
"""

import asyncio
import socket
import struct
import threading
import time


class IdleResetProxy:
    def __init__(self, target: tuple[str, int], idle_seconds: float) -> None:
        self.target = target
        self.idle_seconds = idle_seconds
        self.connections_opened = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def close(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_opened += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        flow = {"last": time.monotonic(), "forgotten": False}
        await asyncio.gather(
            self._pump(reader, upstream_writer, flow, client_side=writer, from_client=True),
            self._pump(upstream_reader, writer, flow, client_side=writer, from_client=False),
            return_exceptions=True,
        )

    async def _pump(self, reader, writer, flow, *, client_side, from_client: bool) -> None:
        try:
            while data := await reader.read(65536):
                now = time.monotonic()
                if now - flow["last"] > self.idle_seconds:
                    flow["forgotten"] = True
                if flow["forgotten"]:
                    if from_client:  # the client goes on with a flow the proxy forgot: reset it
                        self.resets += 1
                        _reset(client_side)
                        writer.transport.abort()
                        return
                    continue  # the server's data for a forgotten flow goes nowhere
                flow["last"] = now
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the client's socket so that the kernel sends a reset, not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
