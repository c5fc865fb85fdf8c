"""The local servers' SCRAM users, as Atlas has them on this project's tier (SCRAM projects only).

    user = ScramUser.create()            # the tier's mechanisms (atlas_tier.json), a new password
    user = ScramUser.create(("SCRAM-SHA-1",))
    server = start_mongo(user.login())   # the server holds the user; clients sign in as it

Its mechanisms are the ones Atlas offers on this project's tier (SCRAM-SHA-1 only on M0 and Flex),
and the server names them in the handshake's saslSupportedMechs as mongod does (mongoeco's handshake
is patched once, on import), so the driver negotiates here what it will on Atlas.
"""

import hashlib
import secrets
from dataclasses import dataclass, field

from mongoeco.wire import WireAuthUser
from mongoeco.wire.handshake import WireHandshakeService

from tests.support.mongo import TIER, Login

URI_OPTIONS = "authSource=admin"  # as in template.yaml: no authMechanism, the driver negotiates

# "admin.<user>" -> that user's mechanisms, for every embedded server of this process
_MECHANISMS: dict[str, tuple[str, ...]] = {}
_build_hello = WireHandshakeService.build_hello_response


def _hello_naming_the_users_mechanisms(self, *, command_name, body, connection):
    """mongod answers a handshake that asks saslSupportedMechs=<db>.<user> with that user's SCRAM
    mechanisms; mongoeco does not, so the driver would always fall back to SCRAM-SHA-1."""
    response = _build_hello(self, command_name=command_name, body=body, connection=connection)
    asked = body.get("saslSupportedMechs")
    if isinstance(asked, str) and asked in _MECHANISMS:
        response["saslSupportedMechs"] = list(_MECHANISMS[asked])
    return response


WireHandshakeService.build_hello_response = _hello_naming_the_users_mechanisms


@dataclass(frozen=True)
class ScramUser:
    """The database user of a local server: a name of its own (so each server's user can offer
    its own mechanisms), a random password, and the mechanisms of this project's tier."""

    username: str
    password: str = field(repr=False)
    mechanisms: tuple[str, ...]

    @classmethod
    def create(cls, mechanisms: tuple[str, ...] | None = None) -> "ScramUser":
        user = cls(
            username=f"app_{secrets.token_hex(4)}",
            password=secrets.token_urlsafe(16),
            mechanisms=tuple(mechanisms or TIER["scram_mechanisms"]),
        )
        _MECHANISMS[f"admin.{user.username}"] = user.mechanisms
        return user

    def wire_user(self) -> WireAuthUser:
        """mongoeco's user, holding what mongoeco needs to verify logins as mongod does.

        For SCRAM-SHA-1, MongoDB (and so the driver) feeds PBKDF2 the digest
        md5("user:mongo:password"), not the password; mongoeco feeds it what it holds. So a user
        offering SCRAM-SHA-1 only (M0, Flex) holds that digest. A user offering both mechanisms
        holds the password: the driver negotiates SCRAM-SHA-256, as on Atlas's dedicated tiers."""
        secret = self.password
        if self.mechanisms == ("SCRAM-SHA-1",):
            text = f"{self.username}:mongo:{self.password}".encode()
            secret = hashlib.md5(text, usedforsecurity=False).hexdigest()
        return WireAuthUser(self.username, secret, "admin", self.mechanisms)

    def login(self) -> Login:
        """A server that holds this user; the function and the tests sign in as it."""
        credentials = {"username": self.username, "password": self.password}
        return Login((self.wire_user(),), URI_OPTIONS, credentials, credentials)
