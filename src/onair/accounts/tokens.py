"""Bearer tokens of the user-facing API: JWTs checked with PyJWT, never decoded by hand.

A token carries `sub` (the user id), `role` (`admin` or `user`; `user` when absent) and `exp`.
HS256 tokens are signed with the configured shared secret; RS256 tokens are verified with the
configured public key (and minted, for development, with its private key). docs/auth.md says
how to configure both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from onair.accounts.roles import Role as Role  # re-exported, as it was defined here
from onair.config import DEVELOPMENT_SECRET, AuthSettings
from onair.errors import Forbidden, Unauthorized

log = logging.getLogger("onair.auth")


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self) -> None:
        """Raises: Forbidden, unless this is an admin."""
        if not self.is_admin:
            raise Forbidden("this needs an admin token")


class Authenticator:
    """Checks tokens against the auth settings. Build once per node: the public key is read
    here, so a missing key file stops the start instead of failing every request."""

    def __init__(self, settings: AuthSettings) -> None:
        self.algorithm = settings.algorithm
        self._key: str
        if settings.algorithm == "RS256":
            assert settings.public_key is not None  # the settings validate this
            self._key = settings.public_key.read_text()
        else:
            self._key = settings.secret.get_secret_value()

    @property
    def development_secret(self) -> bool:
        """Whether tokens are checked with the well-known development secret."""
        return self.algorithm == "HS256" and self._key == DEVELOPMENT_SECRET

    def warn_if_insecure(self) -> None:
        if self.development_secret:
            log.warning(
                "auth: tokens are checked with the development secret; anyone can mint them. "
                "Set ONAIR__AUTH__SECRET (or RS256 with ONAIR__AUTH__PUBLIC_KEY) in production."
            )

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            Unauthorized: the token is malformed, forged, expired, or lacks `sub` or `exp`.
        """
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as error:
            raise Unauthorized(f"invalid token ({error})") from None
        role = claims.get("role", Role.USER.value)
        if role not in tuple(Role):
            raise Unauthorized(f"unknown role {role!r} in the token")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise Unauthorized("the token's sub must be a user id of 1 to 128 characters")
        if "\x00" in subject:  # no PostgreSQL column holds it: refused on every database
            raise Unauthorized("the token's sub must not contain a NUL character")
        return Principal(subject, Role(role))


def create_token(
    user_id: str,
    *,
    role: Role = Role.USER,
    ttl: timedelta = timedelta(hours=1),
    settings: AuthSettings,
    private_key: Path | None = None,
    now: datetime | None = None,
) -> str:
    """A signed token for `user_id`, valid for `ttl` from `now`. For development and tests:
    production tokens come from the platform's identity provider.

    Raises:
        ValueError: RS256 without `private_key`.
    """
    issued = now or datetime.now(UTC)
    claims = {"sub": user_id, "role": role.value, "iat": issued, "exp": issued + ttl}
    if settings.algorithm == "RS256":
        if private_key is None:
            raise ValueError("RS256 tokens are signed with a private key: pass its PEM file")
        return jwt.encode(claims, private_key.read_text(), algorithm="RS256")
    return jwt.encode(claims, settings.secret.get_secret_value(), algorithm="HS256")


_TTL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_ttl(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `7d` or `2w` as a duration.

    Raises:
        ValueError: anything else, or zero.
    """
    match = _TTL.match(text.lower())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"invalid ttl {text!r}: use a positive number and s, m, h, d or w (1h)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})
