"""The one reading of an `Authorization: Bearer <token>` header, for the rate limiter and the auth dependency."""


def parse_bearer(authorization: str | None) -> str | None:
    """The token of a bearer `Authorization` header; None when there is none, or it names another scheme or no token."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
