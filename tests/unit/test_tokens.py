"""Tokens: PyJWT verification of HS256 and RS256 tokens, and what every refusal says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from onair.accounts.tokens import Authenticator, Principal, Role, create_token, parse_ttl
from onair.config import AuthSettings
from onair.errors import Forbidden, Unauthorized

SECRET = "unit-test-secret-of-a-decent-length"
HS256 = AuthSettings(secret=SECRET)  # type: ignore[arg-type]


def test_user_token_round_trip() -> None:
    token = create_token("alice", settings=HS256)
    assert Authenticator(HS256).verify(token) == Principal("alice", Role.USER)


def test_admin_token_round_trip() -> None:
    token = create_token("root", role=Role.ADMIN, settings=HS256)
    principal = Authenticator(HS256).verify(token)
    assert principal == Principal("root", Role.ADMIN)
    assert principal.is_admin
    principal.require_admin()


def test_user_is_not_admin() -> None:
    with pytest.raises(Forbidden, match="admin token"):
        Principal("alice", Role.USER).require_admin()


def test_role_defaults_to_user() -> None:
    exp = datetime.now(UTC) + timedelta(minutes=5)
    token = jwt.encode({"sub": "alice", "exp": exp}, SECRET, algorithm="HS256")
    assert Authenticator(HS256).verify(token).role is Role.USER


def test_expired_token_is_refused() -> None:
    token = create_token("alice", settings=HS256, now=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(Unauthorized, match="expired"):
        Authenticator(HS256).verify(token)


def test_token_of_another_secret_is_refused() -> None:
    other = AuthSettings(secret="another-secret-of-a-decent-length")  # type: ignore[arg-type]
    with pytest.raises(Unauthorized, match="Signature verification failed"):
        Authenticator(HS256).verify(create_token("alice", settings=other))


def test_tampered_claims_are_refused() -> None:
    header, _, signature = create_token("alice", settings=HS256).split(".")
    forged = jwt.encode(
        {"sub": "alice", "role": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)},
        "a-guessed-secret-that-is-long-enough",
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(Unauthorized, match="invalid token"):
        Authenticator(HS256).verify(f"{header}.{forged}.{signature}")


def test_unsigned_token_is_refused() -> None:
    exp = datetime.now(UTC) + timedelta(hours=1)
    token = jwt.encode({"sub": "root", "role": "admin", "exp": exp}, None, algorithm="none")
    with pytest.raises(Unauthorized, match="invalid token"):
        Authenticator(HS256).verify(token)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"role": "user"}, "sub", id="no_sub"),
        pytest.param({"sub": "alice", "no_exp": True}, "exp", id="no_exp"),
        pytest.param({"sub": "alice", "role": "owner"}, "unknown role 'owner'", id="bad_role"),
        pytest.param({"sub": "x" * 129}, "1 to 128 characters", id="long_sub"),
    ],
)
def test_incomplete_claims_are_refused(claims: dict[str, object], reason: str) -> None:
    payload = dict(claims)
    if not payload.pop("no_exp", False):
        payload["exp"] = datetime.now(UTC) + timedelta(hours=1)
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match=reason):
        Authenticator(HS256).verify(token)


def test_garbage_is_refused() -> None:
    with pytest.raises(Unauthorized, match="Not authenticated: invalid token"):
        Authenticator(HS256).verify("not-a-jwt")


@pytest.fixture
def rsa_keys(tmp_path: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "private.pem"
    public = tmp_path / "public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_rs256_round_trip(rsa_keys: tuple[Path, Path]) -> None:
    private, public = rsa_keys
    settings = AuthSettings(algorithm="RS256", public_key=public)
    token = create_token("root", role=Role.ADMIN, settings=settings, private_key=private)
    assert Authenticator(settings).verify(token) == Principal("root", Role.ADMIN)


def test_rs256_refuses_hs256_tokens_signed_with_the_public_key(
    rsa_keys: tuple[Path, Path],
) -> None:
    """The algorithm confusion attack: the public key used as an HMAC secret."""
    _, public = rsa_keys
    settings = AuthSettings(algorithm="RS256", public_key=public)
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64({"sub": "root", "role": "admin", "exp": exp})
    mac = hmac.new(public.read_bytes(), f"{header}.{payload}".encode(), hashlib.sha256)
    signature = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    with pytest.raises(Unauthorized, match="invalid token"):
        Authenticator(settings).verify(f"{header}.{payload}.{signature}")


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_rs256_needs_a_public_key() -> None:
    with pytest.raises(ValueError, match="public_key"):
        AuthSettings(algorithm="RS256")


def test_rs256_minting_needs_a_private_key(rsa_keys: tuple[Path, Path]) -> None:
    settings = AuthSettings(algorithm="RS256", public_key=rsa_keys[1])
    with pytest.raises(ValueError, match="private key"):
        create_token("alice", settings=settings)


def test_development_secret_is_flagged() -> None:
    assert Authenticator(AuthSettings()).development_secret
    assert not Authenticator(HS256).development_secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("15m", timedelta(minutes=15), id="minutes"),
        pytest.param("1h", timedelta(hours=1), id="hours"),
        pytest.param("7d", timedelta(days=7), id="days"),
        pytest.param("2W", timedelta(weeks=2), id="weeks_upper_case"),
    ],
)
def test_ttl(text: str, expected: timedelta) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "0h", "-1h", "1y", "1.5h"])
def test_invalid_ttl(text: str) -> None:
    with pytest.raises(ValueError, match="invalid ttl"):
        parse_ttl(text)
