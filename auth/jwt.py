"""Access tokens: signed, short-lived JWTs carrying the user id, role and session generation."""

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial

import jwt

from models.base import MAX_ID

# A claim value, not a password, whatever the linters guess from the name.
ACCESS_TOKEN_TYPE = "access"  # noqa: S105  # nosec B105
REQUIRED_CLAIMS = ["sub", "role", "type", "jti", "iat", "exp"]
# The user's session generation when the token was issued. A token without it (issued before the claim existed)
# counts as generation 0, which every account had then: it is exactly as good as it was, until the account's
# sessions are next ended.
GENERATION_CLAIM = "gen"
SUBJECT_PATTERN = re.compile(r"[1-9][0-9]{0,9}")


class InvalidTokenError(Exception):
    """The token is malformed, expired, tampered with, or not an access token."""


def _instant(claim: object) -> datetime:
    """A NumericDate claim as a datetime; PyJWT checks `exp` and `iat` but lets through what datetime cannot hold.

    It takes numeric strings and booleans (int() accepts both), and floats or ints far outside year 1 to 9999.
    """
    if isinstance(claim, bool) or not isinstance(claim, int | float):
        raise InvalidTokenError("a time claim is not a number")
    try:
        return datetime.fromtimestamp(claim, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise InvalidTokenError("a time claim is out of range") from error


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    role: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    generation: int = 0


def create_access_token(
    *,
    user_id: int,
    role: str,
    secret: str,
    algorithm: str,
    ttl_seconds: int,
    generation: int = 0,
    now: datetime | None = None,
) -> tuple[str, AccessClaims]:
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = AccessClaims(
        user_id=user_id,
        role=role,
        jti=uuid.uuid4().hex,
        issued_at=issued_at,
        expires_at=issued_at + timedelta(seconds=ttl_seconds),
        generation=generation,
    )
    payload = {
        "sub": str(user_id),
        "role": role,
        "type": ACCESS_TOKEN_TYPE,
        "jti": claims.jti,
        "iat": int(issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        GENERATION_CLAIM: generation,
    }
    return jwt.encode(payload, secret, algorithm=algorithm), claims


def decode_access_token(token: str, *, secret: str, algorithm: str) -> AccessClaims:
    """Verify signature, algorithm (only the configured one: never `none`), expiry, claims and type."""
    try:
        payload = jwt.decode(token, secret, algorithms=[algorithm], options={"require": REQUIRED_CLAIMS})
    except jwt.PyJWTError as error:
        raise InvalidTokenError(str(error)) from error
    if payload.get("type") != ACCESS_TOKEN_TYPE:
        raise InvalidTokenError("not an access token")
    subject, role, jti = payload["sub"], payload["role"], payload["jti"]
    generation = payload.get(GENERATION_CLAIM, 0)
    well_formed = (
        isinstance(subject, str)
        and SUBJECT_PATTERN.fullmatch(subject) is not None
        and int(subject) <= MAX_ID
        and isinstance(role, str)
        and isinstance(jti, str)
        # bool is an int to Python, not to JSON; the column is a 32-bit INTEGER.
        and type(generation) is int
        and 0 <= generation <= MAX_ID
    )
    if not well_formed:
        raise InvalidTokenError("malformed claims")
    return AccessClaims(
        user_id=int(subject),
        role=role,
        jti=jti,
        issued_at=_instant(payload["iat"]),
        expires_at=_instant(payload["exp"]),
        generation=generation,
    )


class VerifiedTokens:
    """Access tokens already verified, by their raw text: the signature and claims are checked once a token.

    Only what cannot change is remembered: a token stays as valid as it was until it expires, which is checked
    on every use. Revocation, role and the account's state are not in here; they are read on every request.
    Failures are not remembered, so nobody without the key can fill it. Least recently used tokens go first.
    """

    def __init__(self, *, secret: str, algorithm: str, size: int, clock: Callable[[], float] = time.time) -> None:
        self._decode = lru_cache(maxsize=size)(partial(decode_access_token, secret=secret, algorithm=algorithm))
        self._clock = clock

    def verify(self, token: str) -> AccessClaims:
        claims = self._decode(token)
        # PyJWT's own rule: expired once `exp` is not after now.
        if claims.expires_at.timestamp() <= self._clock():
            raise InvalidTokenError("Signature has expired")
        return claims
