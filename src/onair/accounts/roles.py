"""The roles a token may carry. Apart from `tokens` so that the command line, which names them
in its options, starts without loading the JWT and settings machinery."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
