"""The TLS view's test beds: the rendered project's local replica set, with TLS and without.

tests/support/replica_set.py starts three members (asyncio servers on 127.0.0.1, each with
its own port) in front of one mongoeco wire server, answering hello as the members of an Atlas
cluster do. With tls=True every member serves TLS with a certificate of a test CA made by
trustme, and its URI carries replicaSet=...&tls=true&tlsCAFile=<that CA>. The TLS view starts
it twice, with tls=True and with tls=False: the same facade, three members each, each in front
of its own mongoeco backend seeded with the same documents, and for scram a database user with
the same mechanisms; only TLS differs. (Two instances because a member either serves TLS or
not; one backend each so that both keep a member and its backend on one event loop.)

Each member keeps a record per accepted connection: the TLS version it negotiated (None for
none), the handshake's client metadata and the commands it sent ("monitor" if only hello,
"pool" otherwise). The records are only ever appended, so a mark taken before an environment
runs and read after it gives exactly the connections accepted meanwhile. The bench's own
client (the seeding) goes straight to the backend, so the members see the functions only.

One change to the TLS members: they issue no TLS 1.3 session tickets (SERVER_SESSION_TICKETS).
The members' TLS is asyncio's (CPython's sslproto), which leaves the tickets it writes after
a handshake unsent until its next write, so the first reply on every new connection waited
about 40 ms (a delayed ACK) that no real server adds and that is no cost of TLS: with tickets
off, the first hello after the handshake takes as long as without TLS. No measured client
could use a ticket anyway: pymongo resumes a TLS session only within one connection pool, a
new client has new pools, and the reused client never reconnects during the view.
"""

from bench.testbed import Testbed

SERVER_SESSION_TICKETS = 0  # TLS 1.3 NewSessionTicket messages per handshake (OpenSSL's default: 2)


class ReplicaSetServer:
    """A local replica set, seen as the Testbed and the attribution see a server."""

    embedded = True

    def __init__(self, support, login, tls: bool):
        self.tls = tls
        self.replica_set = support.start_replica_set(login, tls=tls)
        if tls:  # before the first connection: each handshake reads the context's setting
            self.replica_set.server_context.num_tickets = SERVER_SESSION_TICKETS
        self.uri = self.replica_set.uri
        self.username = self.replica_set.username
        self.password = self.replica_set.password
        self.members = self.replica_set.members
        self.ports = {member.port for member in self.members}

    @property
    def connections_opened(self):
        """Connections accepted by every member so far (what the attribution counts)."""
        return sum(member.connections_opened for member in self.members)

    def mark(self):
        """Where each member's connection records end now."""
        return [len(member.connections) for member in self.members]

    def records_since(self, mark):
        """The connection records the members added since mark, member by member."""
        return [
            record for member, start in zip(self.members, mark, strict=True) for record in member.connections[start:]
        ]

    def close(self):
        self.replica_set.close()


class ReplicaSetTestbed(Testbed):
    """One auth mode's function served by the local replica set, with TLS or without."""

    def __init__(self, project, seed_documents, work, tls: bool, local_auth=None):
        self.tls = tls
        self.label = "tls" if tls else "plain"
        super().__init__(project, seed_documents, work, local_auth)
        self.port = None  # three members: see self.mongo.ports

    def start_server(self):
        return ReplicaSetServer(self.project.support["replica_set"], self.local_auth.login(), self.tls)

    def direct_client(self):
        return self.mongo.replica_set.backend_client()
