"""Conditional writes: a write may name the versions of a resource it was based on, and is refused otherwise."""

from services.errors import PreconditionFailedError

# The versions a write accepts (an HTTP If-Match); None: whichever is current, an unconditional write.
ExpectedVersions = frozenset[int] | None


def stale(what: str) -> PreconditionFailedError:
    return PreconditionFailedError(f"{what} is not at the version this request names; nothing was changed")


def require_version(current: int, expected: ExpectedVersions, *, what: str) -> None:
    """Refuse the write unless `current` is one of the expected versions.

    Called on the row the write is about to change, read inside its transaction; the write's own UPDATE then
    names that version too, so a change committed in between is refused rather than written over.
    """
    if expected is not None and current not in expected:
        raise stale(what)
