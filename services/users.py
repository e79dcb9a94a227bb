"""Accounts: registration, the first admin, one's own profile, and what admins may see and change."""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from auth.principal import Principal
from auth.roles import Role
from auth.security import PasswordHasher
from database.connection import release_connection, write_transaction
from database.pagination import ListRequest, Page
from database.repositories import users as users_repo
from models import User
from representations import representation
from services.access import require_active_admin, require_may_read_user
from services.account_mail import AccountMail
from services.errors import AuthenticationError, ConflictError, NotFoundError
from services.events import EventType, record_change, record_update, user_actor
from services.preconditions import ExpectedVersions, require_version

logger = logging.getLogger(__name__)


async def register_user(
    *,
    session: AsyncSession,
    hasher: PasswordHasher,
    username: str,
    email: str,
    password: str,
    role: Role = Role.USER,
    verify_with: AccountMail | None = None,
    actor: Principal | None = None,
) -> User:
    """A new account. With `verify_with`, its address is unverified until the mail sent through it is followed;
    without (an account made by an admin, or the first admin), the address counts as verified. With `actor`, the
    write is an admin's, carried out only if they still are one when it commits.
    """
    # Checked ahead only to spare a bcrypt hash on a username or email already taken. The unique indexes are the
    # guard: a registration racing this one passes the check, and add_user then raises the same 409.
    await users_repo.refuse_taken_identity(session, username=username, email=email)
    await release_connection(session)
    hashed_password = await hasher.hash(password)
    async with write_transaction(session):
        if actor is not None:
            await require_active_admin(session, actor=actor)
        user = await users_repo.add_user(
            session,
            username=username,
            email=email,
            hashed_password=hashed_password,
            role=role,
            email_verified=verify_with is None,
        )
        # A registration is the new user's own doing; an account made by an admin is the admin's.
        author = user.id if actor is None else actor.id
        record_change(session, type=EventType.USER_REGISTERED, resource=user, actor=user_actor(author))
        mail = await verify_with.verification(session, user) if verify_with is not None else None
    if verify_with is not None:
        verify_with.send_verification(mail)
    return user


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


def _found(user: User | None, user_id: int) -> User:
    # An erased account keeps its row for its orders' sake, but as a user it is gone.
    if user is None or user.deleted_at is not None:
        raise NotFoundError(f"User {user_id} not found")
    return user


async def get_user(*, session: AsyncSession, actor: Principal, user_id: int) -> User:
    """An account, for an admin or its own user (who comes from the session, without another query)."""
    require_may_read_user(actor=actor, user_id=user_id)
    return _found(await users_repo.get_user(session, user_id), user_id)


async def list_users(*, session: AsyncSession, page: ListRequest) -> Page[User]:
    return await users_repo.list_users(session, page)


async def update_user(
    *,
    session: AsyncSession,
    actor: Principal,
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
        before = representation(user)
        if role is not None:
            user.role = role
        if is_active is not None:
            user.is_active = is_active
        await session.flush()
        record_update(session, type=EventType.USER_UPDATED, resource=user, before=before, actor=user_actor(actor.id))
    return user


async def lock_own_account(session: AsyncSession, user: User) -> User:
    """The caller's own row, read afresh and locked until the write transaction ends (it may have been erased)."""
    locked = (await users_repo.lock_users(session, {user.id})).get(user.id)
    if locked is None or locked.deleted_at is not None:
        raise AuthenticationError("The access token is invalid or expired", code="invalid_token")
    return locked


async def update_profile(
    *,
    session: AsyncSession,
    user: User,
    username: str | None,
    email: str | None,
    mail: AccountMail,
    expected_versions: ExpectedVersions = None,
) -> User:
    """Change one's own username or e-mail, under registration's rules; a new address must be verified again."""
    async with write_transaction(session):
        account = await lock_own_account(session, user)
        require_version(account.version, expected_versions, what=f"User {account.id}")
        before = representation(account)
        # Addresses compare as the unique index does: a change of case is the same address.
        readdressed = email is not None and email.lower() != account.email.lower()
        if username is not None:
            account.username = username
        if email is not None:
            account.email = email
        if readdressed:
            account.email_verified = False
        await users_repo.save_user(session, account)
        record_update(
            session, type=EventType.USER_UPDATED, resource=account, before=before, actor=user_actor(account.id)
        )
        verification = await mail.verification(session, account) if readdressed else None
    mail.send_verification(verification)
    return account
