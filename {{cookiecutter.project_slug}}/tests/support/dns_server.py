"""A DNS server on loopback that answers the SRV and TXT records it is given, as Atlas's DNS
answers for a mongodb+srv:// host: pymongo looks both up with dnspython when the client is first
used, and takes loadBalanced, replicaSet and authSource from the TXT record.

    server = LocalDNS({
        ("_mongodb._tcp.c0-pl-0-lb.abcde.mongodb.net", "SRV"): ["0 0 1024 lb.abcde.mongodb.net."],
        ("c0-pl-0-lb.abcde.mongodb.net", "TXT"): ['"loadBalanced=true"'],
    }).start()
    monkeypatch.setattr(dns.resolver, "default_resolver", server.resolver())  # pymongo asks it
    server.queries   # [(name, type), ...] in the order asked
    server.stop()

A name or type it was not given is answered with no records (NOERROR, empty), as a name with no
TXT record is in public DNS. Records are in zone-file text (dnspython parses them).
"""

import socket
import threading

import dns.message
import dns.rdatatype
import dns.resolver
import dns.rrset


def _absolute(name: str) -> str:
    return name.rstrip(".").lower() + "."


class LocalDNS:
    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = {(_absolute(name), kind): texts for (name, kind), texts in records.items()}
        self.queries: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)  # so stop() is seen within a tenth of a second
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="local-dns", daemon=True)

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def start(self) -> "LocalDNS":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._socket.close()

    def resolver(self) -> dns.resolver.Resolver:
        """A dnspython resolver that asks this server only, over UDP on loopback."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                wire, peer = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            key = (_absolute(question.name.to_text()), dns.rdatatype.to_text(question.rdtype))
            self.queries.append(key)
            texts = self.records.get(key)
            if texts:
                answer = dns.rrset.from_text_list(question.name, 60, "IN", question.rdtype, texts)
                response.answer.append(answer)
            self._socket.sendto(response.to_wire(), peer)
