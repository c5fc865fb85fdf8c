"""Samples taken between invocations: resident memory, live connections, attribution.

- Resident memory: VmRSS of the runtime process after invocations 100 and 1000, and every
  50 invocations for the chart; its peak is VmHWM.
- Live connections: established TCP connections from the process to the wire server's
  port, read from the socket table.
- Attribution: the wire server's count of connections it accepted and the auth mode's count
  of credential checks (STS exchanges for iam, secret reads for scram), read before and after
  each invocation. Only the
  environment being invoked runs (the others are frozen, as Lambda freezes idle
  environments), so whatever was counted in between belongs to it.
"""

import psutil

RSS_MARKS = (100, 1000)
SERIES_EVERY = 10


def _proc_status_mb(pid, field_name):
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid):
    return _proc_status_mb(pid, "VmRSS")


def peak_rss_mb(environment):
    """VmHWM, or the highest VmRSS sampled if higher: the kernel updates the high-water
    mark lazily (on unmap and exit), so it can lag a sample taken a moment earlier."""
    samples = [mb for _, mb in environment.rss_series if mb] + [mb for mb in environment.rss_at.values() if mb]
    peak = _proc_status_mb(environment.pid, "VmHWM")
    candidates = [mb for mb in (peak, rss_mb(environment.pid), *samples) if mb]
    return max(candidates) if candidates else None


def live_connections(pid, port):
    """Established TCP connections from process pid to the server's port, or to any of a
    collection of ports (a replica set's members), at socket level."""
    ports = {port} if isinstance(port, int) else set(port)
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return None
    return sum(
        1
        for connection in connections
        if connection.raddr and connection.raddr.port in ports and connection.status == psutil.CONN_ESTABLISHED
    )


class Attribution:
    """Charges what the wire server and the auth mode's stand-ins counted to the environment that
    ran: connections, and credential checks (iam: MONGODB-AWS logins checked with STS; scram:
    Secrets Manager reads)."""

    def __init__(self, mongo, local_auth=None):
        self.mongo = mongo
        self.local_auth = local_auth

    def counters(self):
        """(connections opened, credential checks) so far."""
        reads = sum(self.local_auth.reads().values()) if self.local_auth is not None else 0
        return self.mongo.connections_opened, reads

    def charge(self, environment, before):
        """Add what was counted since `before` to the environment; returns the counters now."""
        now = self.counters()
        environment.opened += now[0] - before[0]
        environment.credential_reads += now[1] - before[1]
        return now

    def charge_invocation(self, environment, before):
        """charge() after an invocation, then the series and the marks at its count."""
        now = self.charge(environment, before)
        n = environment.invocations
        if n % SERIES_EVERY == 0 or n == 1:
            environment.conn_series.append((n, environment.opened))
        for mark in RSS_MARKS:
            if n == mark:
                environment.opened_at[mark] = environment.opened
                environment.credential_reads_at[mark] = environment.credential_reads
                environment.rss_at[mark] = rss_mb(environment.pid)
        if n % 50 == 0 or n == 1:
            environment.rss_series.append((n, rss_mb(environment.pid)))
        return now
