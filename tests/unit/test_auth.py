"""Bearer-token checks: pinned algorithms, key choice by kid, claims, and one answer for
every failure."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jobkit.auth import Authenticator, AuthSettings, JwksFile, Principal, mint_token
from jobkit.errors import ConfigError, Unauthenticated

SECRET = "dev-secret-for-tests-0123456789abcdef"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "iat": now, "nbf": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def write_jwks(path: Path, keys: dict[str, Any]) -> None:
    entries = []
    for kid, key in keys.items():
        entry = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
            if isinstance(key, rsa.RSAPrivateKey)
            else jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())
        )
        entry["kid"] = kid
        entries.append(entry)
    path.write_text(json.dumps({"keys": entries}))


@pytest.fixture
def jwks_path(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    write_jwks(path, {"rsa-1": RSA_KEY, "ec-1": EC_KEY})
    return path


@pytest.fixture
def auth(jwks_path: Path) -> Authenticator:
    return Authenticator(
        SECRET,
        jwks=JwksFile(jwks_path, check_every_s=0),
        algorithms=("RS256", "ES256"),
        issuer="https://id.example",
        audience="jobs",
    )


def good(**overrides: Any) -> dict[str, Any]:
    return claims(**{"iss": "https://id.example", "aud": "jobs", **overrides})


def unsigned(payload: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_valid_tokens_of_each_configured_kind(auth: Authenticator) -> None:
    for token in (
        jwt.encode(good(), SECRET, algorithm="HS256"),
        jwt.encode(good(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
        jwt.encode(good(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"}),
    ):
        assert auth.authenticate(metadata(token)) == Principal("alice")


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": lambda: unsigned(good()),
    "HS256 signed with the RSA public key (confusion)": lambda: _hs_with_public_pem(),
    "wrong secret": lambda: jwt.encode(good(), "not-the-secret-0123456789abcdef-xyz", "HS256"),
    "expired": lambda: jwt.encode(good(exp=int(time.time()) - 120), SECRET, "HS256"),
    "not yet valid": lambda: jwt.encode(good(nbf=int(time.time()) + 120), SECRET, "HS256"),
    "wrong issuer": lambda: jwt.encode(good(iss="https://evil.example"), SECRET, "HS256"),
    "wrong audience": lambda: jwt.encode(good(aud="billing"), SECRET, "HS256"),
    "no exp": lambda: jwt.encode(good(exp=None), SECRET, "HS256"),
    "no sub": lambda: jwt.encode(good(sub=None), SECRET, "HS256"),
    "unknown kid": lambda: jwt.encode(good(), RSA_KEY, "RS256", headers={"kid": "rsa-9"}),
    "right kid, wrong key": lambda: jwt.encode(
        good(), OTHER_RSA_KEY, "RS256", headers={"kid": "rsa-1"}
    ),
    "unpinned algorithm": lambda: jwt.encode(good(), RSA_KEY, "RS512", headers={"kid": "rsa-1"}),
    "HS512": lambda: jwt.encode(good(), SECRET * 2, "HS512"),
    "malformed": lambda: "not.a.jwt",
    "garbage": lambda: "%%%",
}


def _hs_with_public_pem() -> str:
    # PyJWT refuses to sign with PEM-looking HMAC keys, which is what an attacker would do
    # by hand: HMAC over the header and payload with the public key bytes as the secret.
    import hashlib
    import hmac

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{part(good())}"
    signature = hmac.new(RSA_PUBLIC_PEM, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_every_bad_token_is_unauthenticated_with_the_same_message(
    auth: Authenticator, case: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        auth.authenticate(metadata(BAD_TOKENS[case]()))
    assert caught.value.public_message == "missing or invalid credentials"


def test_confusion_fails_even_with_only_a_public_key_configured() -> None:
    auth = Authenticator(
        None, public_key=serialization.load_pem_public_key(RSA_PUBLIC_PEM), algorithms=("RS256",)
    )
    with pytest.raises(Unauthenticated):
        auth.authenticate(metadata(_hs_with_public_pem()))
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    assert auth.authenticate(metadata(token)).subject == "alice"


@pytest.mark.parametrize(
    "value", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer", "Token abc"]
)
def test_missing_or_malformed_header(auth: Authenticator, value: str | None) -> None:
    md = [] if value is None else [("authorization", value)]
    with pytest.raises(Unauthenticated):
        auth.authenticate(md)


@pytest.mark.parametrize(
    "subject",
    ["ali\x00ce", "\x00", "alice\n", "ali\x1bce", "alice\x7f", "\ud800", "x" * 257, ""],
    ids=["nul", "only nul", "newline", "escape", "del", "lone surrogate", "too long", "empty"],
)
def test_a_subject_that_cannot_be_a_user_id_is_unauthenticated(
    auth: Authenticator, subject: str
) -> None:
    # NUL cannot be stored in Postgres text; a lone surrogate cannot be encoded as UTF-8.
    token = jwt.encode(good(sub=subject), SECRET, "HS256")
    with pytest.raises(Unauthenticated) as caught:
        auth.authenticate(metadata(token))
    assert caught.value.public_message == "missing or invalid credentials"


def test_any_printable_subject_is_a_user(auth: Authenticator) -> None:
    for subject in ("José Ñ 名前", "auth0|5f1c", "user@example.com", "x" * 256):
        token = jwt.encode(good(sub=subject), SECRET, "HS256")
        assert auth.authenticate(metadata(token)).subject == subject


def test_leeway_tolerates_small_clock_skew(auth: Authenticator) -> None:
    token = jwt.encode(good(nbf=int(time.time()) + 5), SECRET, "HS256")
    assert auth.authenticate(metadata(token)).subject == "alice"


def test_admin_scope(auth: Authenticator) -> None:
    admin = jwt.encode(good(scope="jobs:read jobs:admin"), SECRET, "HS256")
    assert auth.authenticate(metadata(admin)).is_admin
    lookalike = jwt.encode(good(scope="jobs:administrator"), SECRET, "HS256")
    assert not auth.authenticate(metadata(lookalike)).is_admin
    assert (
        Authenticator(SECRET)
        .authenticate(metadata(mint_token(SECRET, "ops", scopes=["jobs:admin"])))
        .is_admin
    )


def test_jwks_file_is_reloaded_when_keys_rotate(jwks_path: Path, auth: Authenticator) -> None:
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(good(), rotated, "RS256", headers={"kid": "rsa-2"})
    with pytest.raises(Unauthenticated):
        auth.authenticate(metadata(token))
    write_jwks(jwks_path, {"rsa-2": rotated})
    stat = jwks_path.stat()
    os.utime(jwks_path, (stat.st_atime, stat.st_mtime + 5))
    assert auth.authenticate(metadata(token)).subject == "alice"
    old = jwt.encode(good(), RSA_KEY, "RS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthenticated):
        auth.authenticate(metadata(old))


def test_settings_need_some_key_and_only_public_key_algorithms(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        AuthSettings.from_env({})
    with pytest.raises(ConfigError):
        AuthSettings.from_env({"JWT_SECRET": "x", "JWT_ALGORITHMS": "HS256"})
    pem = tmp_path / "key.pem"
    pem.write_bytes(RSA_PUBLIC_PEM)
    settings = AuthSettings.from_env({"JWT_PUBLIC_KEY_FILE": str(pem)})
    auth = Authenticator.from_settings(settings)
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    assert auth.authenticate(metadata(token)).subject == "alice"
    with pytest.raises(Unauthenticated):
        auth.authenticate(metadata(mint_token("x" * 32, "alice")))  # no secret configured


def test_a_verified_token_is_remembered_until_it_expires() -> None:
    strict = Authenticator(SECRET, leeway_s=0)
    token = jwt.encode(claims(exp=int(time.time()) + 1), SECRET, "HS256")
    assert strict.verify(token).subject == "alice"
    assert strict.verify(token).subject == "alice"  # from the cache
    time.sleep(1.1)
    with pytest.raises(Unauthenticated):
        strict.verify(token)


def test_a_remembered_token_is_refused_once_its_key_is_rotated_out(
    jwks_path: Path, auth: Authenticator
) -> None:
    token = jwt.encode(good(), RSA_KEY, "RS256", headers={"kid": "rsa-1"})
    assert auth.authenticate(metadata(token)).subject == "alice"
    # The same kid now names another key: the remembered verification no longer holds.
    write_jwks(jwks_path, {"rsa-1": OTHER_RSA_KEY})
    stat = jwks_path.stat()
    os.utime(jwks_path, (stat.st_atime, stat.st_mtime + 5))
    with pytest.raises(Unauthenticated):
        auth.authenticate(metadata(token))


def test_the_cache_does_not_vouch_for_a_forged_variant() -> None:
    """Only the exact token verified is remembered: a look-alike is checked in full."""
    auth = Authenticator(SECRET)
    token = jwt.encode(claims(), SECRET, "HS256")
    assert auth.verify(token).subject == "alice"
    header, _payload, signature = token.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps(claims(sub="mallory")).encode()).decode().rstrip("=")
    )
    with pytest.raises(Unauthenticated):
        auth.verify(f"{header}.{forged_payload}.{signature}")
