"""SQL for users."""

from collections.abc import Collection

from sqlalchemy import and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth.principal import Principal
from auth.roles import Role
from database.pagination import Keyset, ListRequest, Page, fetch_page
from database.violations import DOMAIN_ERRORS, EMAIL_TAKEN, USERNAME_TAKEN, flush_row
from models import RevokedAccessToken, User


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


# What authorising a request reads of the caller, and nothing more: the order of Principal's fields.
PRINCIPAL_COLUMNS = (User.id, User.role, User.is_active, User.session_generation, User.email_verified)
# Built once: a statement object made per request costs more to build and to look up in the compile cache.
_PRINCIPAL = select(*PRINCIPAL_COLUMNS).where(User.id == bindparam("user_id"))
_PRINCIPAL_UNLESS_REVOKED = select(
    *PRINCIPAL_COLUMNS, exists().where(RevokedAccessToken.jti == bindparam("jti")).label("revoked")
).where(User.id == bindparam("user_id"))


async def get_principal(connection: AsyncConnection, user_id: int) -> Principal | None:
    row = (await connection.execute(_PRINCIPAL, {"user_id": user_id})).first()
    return None if row is None else Principal(*row)


async def get_principal_unless_revoked(
    connection: AsyncConnection, *, user_id: int, jti: str
) -> tuple[Principal | None, bool]:
    """The principal behind an access token and whether that token was revoked, in one statement."""
    row = (await connection.execute(_PRINCIPAL_UNLESS_REVOKED, {"user_id": user_id, "jti": jti})).first()
    if row is None:
        return None, False
    return Principal(*row[:-1]), bool(row[-1])


async def get_user_unless_revoked(session: AsyncSession, *, user_id: int, jti: str) -> tuple[User | None, bool]:
    """The user behind an access token and whether that token was revoked, in one round trip."""
    revoked = exists().where(RevokedAccessToken.jti == jti).label("revoked")
    row = (await session.execute(select(User, revoked).where(User.id == user_id))).first()
    if row is None:
        return None, False
    return row[0], bool(row[1])


async def lock_active_admin(session: AsyncSession, user_id: int) -> bool:
    """Whether the user is an active admin, their row share-locked until the transaction ends.

    A demotion committed before is seen; one in flight is waited for, then seen (PostgreSQL re-reads a locked row
    that changed meanwhile); one that comes later waits for this transaction. SQLite has no row locks and needs
    none: its writers run one at a time.
    """
    query = (
        select(User.id)
        .where(User.id == user_id, User.role == Role.ADMIN, User.is_active.is_(True))
        # FOR SHARE: every admin write may hold it at once; only changing the row (a demotion) waits for them.
        .with_for_update(read=True)
    )
    return (await session.scalar(query)) is not None


async def lock_users(session: AsyncSession, user_ids: Collection[int]) -> dict[int, User]:
    """The users of these ids, read afresh and locked for update until the transaction ends.

    Rows are locked in id order, so two transactions locking the same users cannot deadlock: the second waits
    for the first and then reads what it wrote.
    """
    query = (
        select(User)
        .where(User.id.in_(user_ids))
        .order_by(User.id)
        # FOR NO KEY UPDATE, the lock an UPDATE of these columns takes anyway: it leaves alone the key-share
        # locks that inserting a user's orders or tokens takes on the row.
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return {user.id: user for user in await session.scalars(query)}


async def lock_user_and_admins(session: AsyncSession, user_id: int) -> list[User]:
    """The user and every active admin, read afresh and locked for update, in one statement and in id order.

    Id order, as `lock_users` takes them, so that this cannot deadlock with an admin write locking two of them.
    """
    active_admin = and_(User.role == Role.ADMIN, User.is_active.is_(True), User.deleted_at.is_(None))
    query = (
        select(User)
        .where(or_(User.id == user_id, active_admin))
        .order_by(User.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return list(await session.scalars(query))


async def find_user_by_login(session: AsyncSession, login: str) -> User | None:
    """A user by username or email, both case-insensitively; never an erased account."""
    folded = login.lower()
    query = select(User).where(
        or_(func.lower(User.username) == folded, func.lower(User.email) == folded), User.deleted_at.is_(None)
    )
    return (await session.scalars(query.limit(1))).first()


async def find_active_user_by_email(session: AsyncSession, email: str) -> User | None:
    query = select(User).where(
        func.lower(User.email) == email.lower(), User.is_active.is_(True), User.deleted_at.is_(None)
    )
    return (await session.scalars(query)).first()


async def find_user_by_username(session: AsyncSession, username: str) -> User | None:
    return (await session.scalars(select(User).where(func.lower(User.username) == username.lower()))).first()


async def refuse_taken_identity(session: AsyncSession, *, username: str, email: str) -> None:
    """Raise what the unique indexes would (username first) were a user with this username or email added now.

    Only a check ahead: the indexes stay the guard against a registration racing this one.
    """
    same_username = func.lower(User.username) == username.lower()
    same_email = func.lower(User.email) == email.lower()
    taken = (await session.execute(select(same_username, same_email).where(or_(same_username, same_email)))).all()
    row = {"username": username, "email": email}
    if any(username_taken for username_taken, _ in taken):
        raise DOMAIN_ERRORS[USERNAME_TAKEN](row)
    if taken:
        raise DOMAIN_ERRORS[EMAIL_TAKEN](row)


async def add_user(
    session: AsyncSession, *, username: str, email: str, hashed_password: str, role: Role, email_verified: bool = False
) -> User:
    """A new user; a username or email taken, case-insensitively, is refused by its unique index."""
    user = User(
        username=username,
        email=email,
        hashed_password=hashed_password,
        role=role,
        is_active=True,
        email_verified=email_verified,
    )
    session.add(user)
    await flush_row(session, user)
    return user


async def save_user(session: AsyncSession, user: User) -> None:
    """Write the changes made to `user`; a username or email taken by another account is refused as on sign-up."""
    await flush_row(session, user)


async def list_users(session: AsyncSession, page: ListRequest) -> Page[User]:
    """Every account but the erased ones, by id."""
    return await fetch_page(session, select(User).where(User.deleted_at.is_(None)), page, Keyset((User.id,)))
