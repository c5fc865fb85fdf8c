"""A connection establishment rate limiter with mongod's semantics, for the local replica set.

    limiter = RateLimiter(rate=15)                     # Atlas M10/M20: 15 new connections/s/node
    limiter = RateLimiter(15, burst_seconds=1, max_queue_depth=5, max_queue_seconds=30)
    waited = await limiter.admit(gone)                 # seconds queued, or None: closed unserved
    limiter.admitted, .queued, .abandoned, .rejected, .dropped, .longest_wait

What it follows, from mongod's sources and MongoDB's documentation (8.2, also 8.1.1 and 8.0.12:
the ingressConnectionEstablishmentRateLimiter* server parameters, manual/reference/parameters.txt;
src/mongo/db/admission/rate_limiter.cpp and its README):
- a token bucket refilled at `rate` a second, holding at most `burst_seconds` of tokens (mongod's
  ...BurstCapacitySecs; at least one token);
- an attempt is counted after TCP accept and before TLS and hello (the caller queues it there);
- attempts that find no token wait in arrival order (FIFO);
- an attempt whose client disconnects while it waits leaves the queue without spending a token
  (mongod interrupts it on client disconnect and returns its token), so a client that gives up
  loses its place and must queue again at the back: `abandoned` counts those;
- `max_queue_depth` (mongod's ...MaxQueueDepth; None: unbounded): an attempt that would queue
  behind that many is closed at once (`rejected`); mongod's default of 0 rejects every attempt
  that finds no token.
Atlas adds what its limits page says and no more: excess attempts are queued and, under sustained
overload, some are dropped: `max_queue_seconds` (None: never) closes an attempt that has waited
that long (`dropped`). Atlas does not publish its queue depth, burst capacity or waits (MongoTune
sets them at run time), so the tests choose them and say which.
"""

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable


class RateLimiter:
    POLL_SECONDS = 0.05  # how often a queued attempt checks whether its client gave up

    def __init__(
        self,
        rate: float,
        burst_seconds: float = 1.0,
        max_queue_depth: int | None = None,
        max_queue_seconds: float | None = None,
    ) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.max_queue_depth = max_queue_depth
        self.max_queue_seconds = max_queue_seconds
        self.admitted = 0  # attempts given a token
        self.queued = 0  # attempts that found no token and waited
        self.abandoned = 0  # left the queue because their client disconnected first
        self.rejected = 0  # closed at once: the queue was full
        self.dropped = 0  # closed after waiting max_queue_seconds
        self.longest_wait = 0.0
        self._tokens = self.capacity
        self._refilled_at = time.monotonic()
        self._queue: collections.deque = collections.deque()
        self._changed = asyncio.Event()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._refilled_at) * self.rate)
        self._refilled_at = now

    def _admit(self, waited: float) -> float:
        self._tokens -= 1
        self.admitted += 1
        self.longest_wait = max(self.longest_wait, waited)
        return waited

    async def admit(self, gone: Callable[[], bool]) -> float | None:
        """Wait for a token; return the seconds waited, or None when the attempt is closed
        unserved (rejected, dropped, or abandoned: gone() said its client disconnected)."""
        arrived = time.monotonic()
        self._refill()
        if not self._queue and self._tokens >= 1:
            return self._admit(0.0)
        if self.max_queue_depth is not None and len(self._queue) >= self.max_queue_depth:
            self.rejected += 1
            return None
        ticket = object()
        self._queue.append(ticket)
        self.queued += 1
        try:
            while True:
                self._refill()
                waited = time.monotonic() - arrived
                if self._queue[0] is ticket and self._tokens >= 1:
                    self._queue.popleft()
                    self._wake()
                    return self._admit(waited)
                if self.max_queue_seconds is not None and waited >= self.max_queue_seconds:
                    self.dropped += 1
                    return None
                if gone():
                    self.abandoned += 1
                    return None
                pause = self.POLL_SECONDS
                if self._queue[0] is ticket:
                    pause = min(pause, (1 - self._tokens) / self.rate)
                if self.max_queue_seconds is not None:
                    pause = min(pause, self.max_queue_seconds - waited)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), max(0.001, pause))
        finally:
            if ticket in self._queue:
                self._queue.remove(ticket)
                self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
