"""Accounts: registration, the first admin, and what admins may change."""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from auth.security import PasswordHasher
from database.connection import release_connection, write_transaction
from database.pagination import ListRequest, Page
from database.repositories import users as users_repo
from models import User
from services.access import require_active_admin, require_may_read_user
from services.errors import ConflictError, NotFoundError
from services.preconditions import ExpectedVersions, require_version

logger = logging.getLogger(__name__)


async def register_user(
    *, session: AsyncSession, hasher: PasswordHasher, username: str, email: str, password: str, role: Role = Role.USER
) -> User:
    # Checked ahead only to spare a bcrypt hash on a username or email already taken. The unique indexes are the
    # guard: a registration racing this one passes the check, and add_user then raises the same 409.
    await users_repo.refuse_taken_identity(session, username=username, email=email)
    await release_connection(session)
    hashed_password = await hasher.hash(password)
    async with write_transaction(session):
        return await users_repo.add_user(
            session, username=username, email=email, hashed_password=hashed_password, role=role
        )


async def ensure_admin(
    *, session: AsyncSession, hasher: PasswordHasher, username: str, email: str, password: str
) -> User | None:
    """Create the first admin unless a user of that username exists; None when nothing was created."""
    if await users_repo.find_user_by_username(session, username) is not None:
        return None
    try:
        user = await register_user(
            session=session, hasher=hasher, username=username, email=email, password=password, role=Role.ADMIN
        )
    except ConflictError:
        # Another instance starting beside us created it first, or the address belongs to someone else.
        logger.warning("admin %r was not created: username or email already in use", username)
        return None
    logger.info("created admin %r", username)
    return user


async def get_user(*, session: AsyncSession, actor: User, user_id: int) -> User:
    """An account, for an admin or its own user (who comes from the session, without another query)."""
    require_may_read_user(actor=actor, user_id=user_id)
    user = await users_repo.get_user(session, user_id)
    if user is None:
        raise NotFoundError(f"User {user_id} not found")
    return user


async def list_users(*, session: AsyncSession, page: ListRequest) -> Page[User]:
    return await users_repo.list_users(session, page)


async def update_user(
    *,
    session: AsyncSession,
    actor: User,
    user_id: int,
    role: Role | None,
    is_active: bool | None,
    expected_versions: ExpectedVersions = None,
) -> User:
    """Change a user's role or active flag; both take effect on that user's next request."""
    if user_id == actor.id and ((role is not None and role != actor.role) or is_active is False):
        # An admin demoting or disabling themselves could leave the shop with no admin at all.
        raise ConflictError("Admins cannot demote or disable their own account", code="self_modification")
    async with write_transaction(session):
        await require_active_admin(session, actor=actor, changing_user=user_id)
        # Loaded and locked by the check above: this comes from the session, without another query.
        user = await get_user(session=session, actor=actor, user_id=user_id)
        require_version(user.version, expected_versions, what=f"User {user_id}")
        if role is not None:
            user.role = role
        if is_active is not None:
            user.is_active = is_active
        await session.flush()
    return user
