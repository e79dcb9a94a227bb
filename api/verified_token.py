"""The access token the rate limiter verified, handed to the auth dependency through the request's ASGI scope.

One typed entry under one key, written and read only here: the dependency trusts nothing else it finds in the
request state, and the token is verified once a request.
"""

from dataclasses import dataclass

from starlette.types import Scope

from auth.jwt import AccessClaims

_SCOPE_KEY = "shop.verified_token"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: AccessClaims
    revoked: bool | None
    """Whether the token is revoked, when the rate limiter's Redis call checked it; None: not checked yet."""


def store_verified_token(scope: Scope, token: VerifiedToken) -> None:
    scope.setdefault("state", {})[_SCOPE_KEY] = token


def verified_token(scope: Scope) -> VerifiedToken | None:
    token = scope.get("state", {}).get(_SCOPE_KEY)
    return token if isinstance(token, VerifiedToken) else None
