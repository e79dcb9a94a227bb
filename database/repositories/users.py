"""SQL for users."""

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from database.pagination import Page, PageRequest, fetch_page
from models import RevokedAccessToken, User


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_unless_revoked(session: AsyncSession, *, user_id: int, jti: str) -> tuple[User | None, bool]:
    """The user behind an access token and whether that token was revoked, in one round trip."""
    revoked = exists().where(RevokedAccessToken.jti == jti).label("revoked")
    row = (await session.execute(select(User, revoked).where(User.id == user_id))).first()
    if row is None:
        return None, False
    return row[0], bool(row[1])


async def find_user_by_login(session: AsyncSession, login: str) -> User | None:
    """A user by username or email, both case-insensitively."""
    folded = login.lower()
    query = select(User).where(or_(func.lower(User.username) == folded, func.lower(User.email) == folded))
    return (await session.scalars(query.limit(1))).first()


async def find_user_by_username(session: AsyncSession, username: str) -> User | None:
    return (await session.scalars(select(User).where(func.lower(User.username) == username.lower()))).first()


async def taken_identities(session: AsyncSession, *, username: str, email: str) -> set[str]:
    """Which of `username` and `email` another account already holds."""
    query = select(func.lower(User.username), func.lower(User.email)).where(
        or_(func.lower(User.username) == username.lower(), func.lower(User.email) == email.lower())
    )
    taken: set[str] = set()
    for existing_username, existing_email in (await session.execute(query)).all():
        if existing_username == username.lower():
            taken.add("username")
        if existing_email == email.lower():
            taken.add("email")
    return taken


async def add_user(session: AsyncSession, *, username: str, email: str, hashed_password: str, role: str) -> User:
    user = User(username=username, email=email, hashed_password=hashed_password, role=role, is_active=True)
    session.add(user)
    await session.flush()
    return user


async def list_users(session: AsyncSession, page: PageRequest) -> Page[User]:
    return await fetch_page(session, select(User).order_by(User.id), page)
