"""INSERT ... ON CONFLICT DO NOTHING, spelled for the session's dialect."""

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


async def insert_ignoring_conflicts(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any], *, returning: Any = None
) -> Any:
    """Insert one row unless it would violate a unique constraint; return `returning` of the new row, else None.

    Unlike catching IntegrityError, this leaves a PostgreSQL transaction usable after a conflict, and it waits
    for a concurrent transaction holding the same key to finish before deciding.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values).on_conflict_do_nothing()
    if returning is None:
        await session.execute(statement)
        return None
    return (await session.execute(statement.returning(returning))).scalar_one_or_none()
