"""Who a request speaks for: the few columns of the caller's account that authorising a request needs."""

from dataclasses import dataclass

from auth.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the database has it at the start of the request, read as one Core row (not an ORM entity).

    Admin writes judge the actor again under lock (services.access.require_active_admin); routes that need the
    whole account (the `/users/me` family) load the entity instead.
    """

    id: int
    role: Role
    is_active: bool
    session_generation: int
    email_verified: bool
