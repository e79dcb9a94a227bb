"""Helpers the security tests share: problem assertions and row counts."""

from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select

from models import Base


def assert_problem(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """`response` is an RFC 9457 problem with this status (and code), tied to its X-Request-ID."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    if code is not None:
        assert body["code"] == code, body
    return body


async def row_counts(client: AsyncClient, *tables: str) -> dict[str, int]:
    """How many rows each table holds, read straight from the app's database."""
    async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
        return {
            table: (await session.execute(select(func.count()).select_from(Base.metadata.tables[table]))).scalar_one()
            for table in tables
        }
