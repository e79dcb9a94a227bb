"""Errors of the shop's rules. Each carries a stable `code`; the API maps each class to an HTTP status."""


class ShopError(Exception):
    code = "error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFoundError(ShopError):
    code = "not_found"


class UnknownReferenceError(ShopError):
    """The request names something that does not exist (a category of a product, a product of an order)."""

    code = "unknown_reference"


class InvalidCursorError(ShopError):
    """A list cursor the service did not issue for this list, these filters and this sort."""

    code = "invalid_cursor"


class ConflictError(ShopError):
    code = "conflict"


class PreconditionFailedError(ShopError):
    """A write named versions of the resource (an If-Match) of which none is current; nothing was changed."""

    code = "precondition_failed"


class AuthenticationError(ShopError):
    code = "not_authenticated"


class PermissionDeniedError(ShopError):
    code = "forbidden"


class ServiceUnavailableError(ShopError):
    """A backing service (Redis, the database) needed to answer safely cannot be reached."""

    code = "service_unavailable"


class DatabaseUnavailableError(ServiceUnavailableError):
    code = "database_unavailable"


class TooManyRequestsError(ShopError):
    """A rule of the shop caps how often this may be done; it may be done again `retry_after` seconds later."""

    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class InvalidInputError(ShopError):
    """Input that passes the schema but not a rule that needs more than one field (an underivable slug)."""

    code = "invalid_input"

    def __init__(self, detail: str, *, field: str, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.field = field
