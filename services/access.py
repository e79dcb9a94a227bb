"""The rule of every admin write: it is carried out only if its author is still an active admin when it commits.

The role dependency judges the user as loaded at the start of the request; two admins demoting each other at
once would both pass it. So each admin write confirms its author again, inside its own write transaction.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from database.repositories import users as users_repo
from models import User
from services.errors import PermissionDeniedError


def insufficient_role(minimum: Role) -> PermissionDeniedError:
    return PermissionDeniedError(f"This needs the {minimum.value} role or higher", code="insufficient_role")


async def require_active_admin(session: AsyncSession, *, actor: User, changing_user: int | None = None) -> None:
    """Refuse the write unless `actor` is an active admin now, and keep it so until the transaction ends.

    Call it first inside write_transaction. A write that changes a user names them in `changing_user`: the
    actor's and that user's rows are then both locked for update, so of two admins demoting each other the
    second waits for the first and sees its own demotion. (Share locks would let both read, then deadlock.)
    """
    if changing_user is None:
        still_admin = await users_repo.lock_active_admin(session, actor.id)
    else:
        locked = (await users_repo.lock_users(session, {actor.id, changing_user})).get(actor.id)
        still_admin = locked is not None and locked.is_active and locked.role.includes(Role.ADMIN)
    if not still_admin:
        raise insufficient_role(Role.ADMIN)
