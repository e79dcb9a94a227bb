"""Forged, altered, expired and revoked tokens over HTTP: each is a 401 with WWW-Authenticate: Bearer."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from tests.conftest import sqlite_only
from tests.helpers import assert_problem, bearer, login, register

ME = "/api/v1/users/me"
USERS = "/api/v1/users"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict, payload: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def hmac_signed(header: dict, payload: dict, secret: str, digest: str = "sha256") -> str:
    """Signed by hand: PyJWT would warn that our test key is short for HS512."""
    signing_input = segments(header, payload)
    signature = hmac.new(secret.encode(), signing_input.encode(), getattr(hashlib, digest)).digest()
    return f"{signing_input}.{b64(signature)}"


def attacks(token: str, refresh_token: str, secret: str) -> dict[str, str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    head, body, signature = token.split(".")
    now = int(time.time())
    return {
        "alg none": segments({"alg": "none", "typ": "JWT"}, claims) + ".",
        "alg None, signature kept": f"{segments({'alg': 'None', 'typ': 'JWT'}, claims)}.{signature}",
        "signed with another key": jwt.encode(claims, "another-key-that-is-long-enough-for-hs256", "HS256"),
        "HS512 with our key": hmac_signed({"alg": "HS512", "typ": "JWT"}, claims, secret, "sha512"),
        # Key confusion: an asymmetric algorithm named, the HMAC of our key as its "signature".
        "RS256 header, HMAC signature": hmac_signed({"alg": "RS256", "typ": "JWT"}, claims, secret),
        "role raised to admin": f"{head}.{b64(json.dumps({**claims, 'role': 'admin'}).encode())}.{signature}",
        "subject changed": f"{head}.{b64(json.dumps({**claims, 'sub': '1'}).encode())}.{signature}",
        "signature truncated": f"{head}.{body}.{signature[:-4]}",
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, secret, "HS256"),
        "not an access token": jwt.encode({**claims, "type": "refresh"}, secret, "HS256"),
        "no jti": jwt.encode({key: value for key, value in claims.items() if key != "jti"}, secret, "HS256"),
        "unknown user": jwt.encode({**claims, "sub": "2147483647"}, secret, "HS256"),
        "refresh token": refresh_token,
        "garbage": "not.a.jwt",
    }


def assert_unauthorised(response) -> None:
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# Their names, from a stand-in token: each test builds its own forgery from a token of its app.
_STAND_IN_KEY = "stand-in-key-that-is-long-enough-for-hs256"
ATTACKS = list(attacks(jwt.encode({"sub": "1"}, _STAND_IN_KEY, "HS256"), "refresh", _STAND_IN_KEY))


# Refused on reading the token, whatever the backend; an unknown user's token is refused by the lookup of its
# subject, after the revocation check: on both backends.
LOOKED_UP = ["unknown user"]


@sqlite_only
@pytest.mark.parametrize("attack", [attack for attack in ATTACKS if attack not in LOOKED_UP])
async def test_forged_and_altered_tokens_are_401(app_client, attack):
    await assert_forgery_is_401(app_client, attack)


@pytest.mark.parametrize("attack", LOOKED_UP)
async def test_tokens_of_unknown_users_are_401(app_client, attack):
    await assert_forgery_is_401(app_client, attack)


async def assert_forgery_is_401(app_client, attack):
    # With the rate limiter on, tokens are also read in the middleware: it must refuse them just the same.
    async with app_client(rate_limit_enabled=True) as client:
        await register(client, username="firstuser")
        user = await register(client)
        tokens = await login(client, user["username"])
        token = attacks(tokens["access_token"], tokens["refresh_token"], client.app.state.settings.jwt_secret)[attack]
        # A valid request first, so that nothing it leaves behind can vouch for the forged one.
        assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200

        responses = [await client.get(path, headers=bearer(token)) for path in (ME, USERS)]

        assert [response.status_code for response in responses] == [401, 401], [r.text for r in responses]
        for response in responses:
            assert_unauthorised(response)


@sqlite_only  # header parsing does not depend on the database
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  "}, {"Authorization": "Basic YTpi"}],
    ids=["none", "bare-scheme", "blank-token", "basic"],
)
async def test_missing_or_other_schemes_are_401(client, headers):
    assert_unauthorised(await client.get(ME, headers=headers))


async def test_tokens_revoked_by_logout_are_401(app_client):
    async with app_client(rate_limit_enabled=True) as client:
        user = await register(client)
        tokens = await login(client, user["username"])
        access = bearer(tokens["access_token"])
        assert (await client.get(ME, headers=access)).status_code == 200
        logout = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=access
        )
        assert logout.status_code == 204

        revoked = await client.get(ME, headers=access)
        assert_unauthorised(revoked)
        assert revoked.json()["code"] == "token_revoked"
        refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert_unauthorised(refresh)
        # A new login still works: only the revoked tokens are refused.
        fresh = await login(client, user["username"])
        assert (await client.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200


# Signed with our key, so only the time claim is wrong: values datetime cannot hold, or that are no JSON number.
ODD_TIME_CLAIMS = [
    ("exp", 1e20),
    ("exp", 1e300),
    ("exp", "9999999999"),
    ("exp", True),
    ("exp", float("nan")),
    ("exp", 10**30),
    ("iat", -1e20),
    ("iat", True),
    ("iat", float("-inf")),
    ("iat", -(10**30)),
]


@sqlite_only  # token parsing does not depend on the database
@pytest.mark.parametrize(("name", "value"), ODD_TIME_CLAIMS, ids=[f"{n}={v!r}" for n, v in ODD_TIME_CLAIMS])
async def test_time_claims_out_of_range_or_not_numbers_are_401(app_client, name, value):
    # The rate limiter reads the token first, then the auth dependency: neither may fail on it.
    async with app_client(rate_limit_enabled=True) as client:
        tokens = await login(client, (await register(client))["username"])
        secret = client.app.state.settings.jwt_secret  # type: ignore[attr-defined]
        claims = jwt.decode(tokens["access_token"], secret, algorithms=["HS256"])
        odd = jwt.encode({**claims, name: value}, secret, "HS256")
        response = await client.get(ME, headers=bearer(odd))
        assert_unauthorised(response)
        assert response.json()["code"] == "invalid_token"
        assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200
