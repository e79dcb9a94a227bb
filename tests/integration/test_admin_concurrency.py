"""Admins racing each other through the API: of two demoting each other at once, at most one succeeds.

The two requests go through two app instances, each with its own connection pool, as two server processes
sharing one database would.
"""

import asyncio

from sqlalchemy import func, select

from auth.roles import Role
from models import User
from tests.helpers import signed_in

USERS = "/api/v1/users"
TRIES = 20


async def active_admins(client, *user_ids: int) -> int:
    async with client.app.state.database.sessionmaker() as session:
        query = select(func.count()).where(User.id.in_(user_ids), User.role == "admin", User.is_active.is_(True))
        return (await session.execute(query)).scalar_one()


async def test_two_admins_demoting_each_other_leave_one_admin(app_client):
    async with app_client() as first, app_client() as second:
        for _ in range(TRIES):
            a_headers, a = await signed_in(first, Role.ADMIN)
            b_headers, b = await signed_in(first, Role.ADMIN)

            responses = await asyncio.gather(
                first.patch(f"{USERS}/{b['id']}", json={"role": "user"}, headers=a_headers),
                second.patch(f"{USERS}/{a['id']}", json={"role": "user"}, headers=b_headers),
            )

            assert sorted(response.status_code for response in responses) == [200, 403], [r.text for r in responses]
            refused = next(response for response in responses if response.status_code == 403)
            assert refused.json()["code"] == "insufficient_role"
            assert await active_admins(first, a["id"], b["id"]) == 1
