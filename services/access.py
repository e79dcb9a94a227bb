"""Who may do what: who reads whose accounts and orders, and the rule of every admin write.

Every service that decides access takes its principal as `actor` and asks a rule here, by name.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from auth.principal import Principal
from auth.roles import Role
from database.repositories import users as users_repo
from models import User
from services.errors import PermissionDeniedError


def insufficient_role(minimum: Role) -> PermissionDeniedError:
    return PermissionDeniedError(f"This needs the {minimum.value} role or higher", code="insufficient_role")


def is_admin(user: Principal | User) -> bool:
    return user.role.includes(Role.ADMIN)


def require_may_read_user(*, actor: Principal, user_id: int) -> None:
    """Admins may read every account; everyone else only their own."""
    if user_id != actor.id and not is_admin(actor):
        raise PermissionDeniedError("Only admins may read other users", code="insufficient_role")


def require_verified_email(*, actor: Principal) -> None:
    """Where the shop asks for it (REQUIRE_VERIFIED_EMAIL), only accounts with a verified address may go on."""
    if not actor.email_verified:
        raise PermissionDeniedError(
            "Verify your e-mail address first: follow the link in the verification mail", code="email_not_verified"
        )


def orders_visible_to(*, actor: Principal, user_id: int | None = None) -> int | None:
    """The owner whose orders `actor` sees when asking for `user_id`'s (None: all it may see); None: every owner.

    Admins see every order and may ask for anyone's; everyone else sees only their own and may name only themselves.
    """
    if is_admin(actor):
        return user_id
    if user_id not in (None, actor.id):
        raise PermissionDeniedError("Only admins may read other users' orders", code="insufficient_role")
    return actor.id


async def require_active_admin(session: AsyncSession, *, actor: Principal, changing_user: int | None = None) -> None:
    """Refuse the write unless `actor` is an active admin now, and keep it so until the transaction ends.

    The role dependency judges the user as loaded at the start of the request; two admins demoting each other at
    once would both pass it. So each admin write calls this first inside its write_transaction. A write that
    changes a user names them in `changing_user`: the actor's and that user's rows are then both locked for
    update, so of two admins demoting each other the second waits for the first and sees its own demotion. (Share
    locks would let both read, then deadlock.)
    """
    if changing_user is None:
        still_admin = await users_repo.lock_active_admin(session, actor.id)
    else:
        locked = (await users_repo.lock_users(session, {actor.id, changing_user})).get(actor.id)
        still_admin = locked is not None and locked.is_active and is_admin(locked)
    if not still_admin:
        raise insufficient_role(Role.ADMIN)
