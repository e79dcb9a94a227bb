"""services/access.py: who reads whose accounts and orders, and that an admin write is carried out only if its
author is still an active admin when it commits.

The actor each write gets is the user as loaded at the start of its request, so a demotion committed since is
not in it. Interleavings are made by hand: one transaction is held before its commit, its locks taken, while the
other runs.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from database.connection import Database, write_transaction
from database.repositories import categories as categories_repo
from database.repositories import products as products_repo
from database.repositories import users as users_repo
from models import Category, Order, OrderStatus, Product, User
from services import categories as categories_service
from services import orders as orders_service
from services import products as products_service
from services import users as users_service
from services.access import orders_visible_to, require_may_read_user
from services.errors import NotFoundError, PermissionDeniedError
from services.orders import OrderLine
from services.products import ProductData
from tests.helpers import unique, wait_for_lock_waiters


@dataclass(frozen=True)
class Shop:
    admin: User
    other_admin: User
    customer_id: int
    category_id: int
    empty_category_id: int
    product_id: int
    order_id: int


async def add_user(session: AsyncSession, role: Role) -> User:
    name = unique(role.value)
    return await users_repo.add_user(
        session, username=name, email=f"{name}@example.com", hashed_password="x" * 60, role=role
    )


@pytest.fixture
async def shop(database: Database) -> Shop:
    async with database.sessionmaker() as session:
        async with write_transaction(session):
            admin, other_admin = await add_user(session, Role.ADMIN), await add_user(session, Role.ADMIN)
            customer = await add_user(session, Role.USER)
            category = await categories_repo.add_category(session, name="Tools", slug="tools")
            empty = await categories_repo.add_category(session, name="Empty", slug="empty")
            product = await products_repo.add_product(
                session, name="Hammer", price=Decimal("9.99"), stock=5, category_id=category.id
            )
        placed = await orders_service.place_order(
            session=session,
            user_id=customer.id,
            lines=[OrderLine(product.id, 1)],
            render=lambda order: "",
            idempotency_ttl=timedelta(hours=24),
        )
    return Shop(admin, other_admin, customer.id, category.id, empty.id, product.id, placed.order_id)


def _product(name: str) -> ProductData:
    return ProductData(name=name, description="", price=Decimal("1.00"), stock=1, category_id=None)


ME, SOMEONE_ELSE = 7, 8


def actor(role: Role) -> User:
    return User(id=ME, role=role)


@pytest.mark.parametrize("role", list(Role))
def test_a_user_may_read_their_own_account(role):
    require_may_read_user(actor=actor(role), user_id=ME)


@pytest.mark.parametrize(("role", "allowed"), [(Role.ADMIN, True), (Role.USER, False), (Role.GUEST, False)])
def test_only_admins_may_read_another_account(role, allowed):
    if allowed:
        require_may_read_user(actor=actor(role), user_id=SOMEONE_ELSE)
        return
    with pytest.raises(PermissionDeniedError) as refused:
        require_may_read_user(actor=actor(role), user_id=SOMEONE_ELSE)
    assert refused.value.code == "insufficient_role"


@pytest.mark.parametrize(
    ("role", "asked", "owner"),
    [
        (Role.ADMIN, None, None),
        (Role.ADMIN, SOMEONE_ELSE, SOMEONE_ELSE),
        (Role.ADMIN, ME, ME),
        (Role.USER, None, ME),
        (Role.USER, ME, ME),
        (Role.GUEST, None, ME),
        (Role.GUEST, ME, ME),
    ],
)
def test_orders_visible_to_admins_are_everyones_and_to_others_their_own(role, asked, owner):
    assert orders_visible_to(actor=actor(role), user_id=asked) == owner


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST])
def test_only_admins_may_ask_for_another_users_orders(role):
    with pytest.raises(PermissionDeniedError) as refused:
        orders_visible_to(actor=actor(role), user_id=SOMEONE_ELSE)
    assert refused.value.code == "insufficient_role"


AdminWrite = Callable[[AsyncSession, Shop], Awaitable[Any]]

WRITES: dict[str, AdminWrite] = {
    "create category": lambda session, shop: categories_service.create_category(
        session=session, actor=shop.admin, name="Garden", slug=None
    ),
    "replace category": lambda session, shop: categories_service.replace_category(
        session=session, actor=shop.admin, category_id=shop.category_id, name="Renamed", slug=None
    ),
    "delete category": lambda session, shop: categories_service.delete_category(
        session=session, actor=shop.admin, category_id=shop.empty_category_id
    ),
    "create product": lambda session, shop: products_service.create_product(
        session=session, actor=shop.admin, data=_product("Saw")
    ),
    "replace product": lambda session, shop: products_service.replace_product(
        session=session, actor=shop.admin, product_id=shop.product_id, data=_product("Mallet")
    ),
    "delete product": lambda session, shop: products_service.delete_product(
        session=session, actor=shop.admin, product_id=shop.product_id
    ),
    "change order status": lambda session, shop: orders_service.change_order_status(
        session=session, actor=shop.admin, order_id=shop.order_id, status=OrderStatus.PAID
    ),
    "update user": lambda session, shop: users_service.update_user(
        session=session, actor=shop.admin, user_id=shop.customer_id, role=Role.GUEST, is_active=None
    ),
}

DEMOTIONS = {"role user": {"role": Role.USER, "is_active": None}, "disabled": {"role": None, "is_active": False}}


async def contents(database: Database) -> list[tuple[Any, ...]]:
    """Every row an admin write can change."""
    queries = [
        select(Category.id, Category.name, Category.slug).order_by(Category.id),
        select(Product.id, Product.name, Product.price, Product.stock, Product.deleted_at).order_by(Product.id),
        select(Order.id, Order.status).order_by(Order.id),
        select(User.id, User.role, User.is_active).order_by(User.id),
    ]
    async with database.sessionmaker() as session:
        return [tuple(row) for query in queries for row in (await session.execute(query)).all()]


def demote(
    session: AsyncSession, *, actor: User, user: User, role: Role | None = Role.USER, is_active: bool | None = None
) -> Awaitable[User]:
    return users_service.update_user(session=session, actor=actor, user_id=user.id, role=role, is_active=is_active)


@dataclass
class HeldCommit:
    reached: asyncio.Event
    release: asyncio.Event


def hold_commit(session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> HeldCommit:
    """Make `session`'s next commit wait for `release`: its transaction stays open, its locks held, meanwhile."""
    held = HeldCommit(asyncio.Event(), asyncio.Event())
    commit = session.commit

    async def commit_when_released() -> None:
        held.reached.set()
        await held.release.wait()
        await commit()

    monkeypatch.setattr(session, "commit", commit_when_released)
    return held


async def test_get_user_gives_an_account_to_an_admin_or_its_own_user(database, shop):
    async with database.sessionmaker() as session:
        customer = await session.get_one(User, shop.customer_id)
        assert await users_service.get_user(session=session, actor=customer, user_id=customer.id) is customer
        read = await users_service.get_user(session=session, actor=shop.admin, user_id=shop.customer_id)
        assert read.id == shop.customer_id
        with pytest.raises(PermissionDeniedError) as refused:
            await users_service.get_user(session=session, actor=customer, user_id=shop.admin.id)
        assert refused.value.code == "insufficient_role"
        with pytest.raises(NotFoundError):
            await users_service.get_user(session=session, actor=shop.admin, user_id=shop.customer_id + 100)


@pytest.mark.parametrize("write", WRITES)
async def test_admin_write_by_an_active_admin_is_carried_out(database, shop, write):
    before = await contents(database)
    async with database.sessionmaker() as session:
        await WRITES[write](session, shop)
    assert await contents(database) != before


@pytest.mark.parametrize("demotion", DEMOTIONS)
@pytest.mark.parametrize("write", WRITES)
async def test_admin_write_is_refused_when_its_author_was_demoted_first(database, shop, write, demotion):
    async with database.sessionmaker() as session:
        await demote(session, actor=shop.other_admin, user=shop.admin, **DEMOTIONS[demotion])
    before = await contents(database)

    async with database.sessionmaker() as session:
        with pytest.raises(PermissionDeniedError) as refused:
            await WRITES[write](session, shop)

    assert refused.value.code == "insufficient_role"
    assert await contents(database) == before


async def test_product_create_waits_for_a_demotion_in_flight_and_is_refused(database, shop, monkeypatch):
    async with database.sessionmaker() as demoting, database.sessionmaker() as creating:
        held = hold_commit(demoting, monkeypatch)
        demotion = asyncio.create_task(demote(demoting, actor=shop.other_admin, user=shop.admin))
        await held.reached.wait()
        creation = asyncio.create_task(WRITES["create product"](creating, shop))
        await wait_for_lock_waiters(database.engine, [creation])
        assert not creation.done()

        held.release.set()
        await demotion
        with pytest.raises(PermissionDeniedError) as refused:
            await creation

    assert refused.value.code == "insufficient_role"
    async with database.sessionmaker() as session:
        assert (await session.scalars(select(Product.name))).all() == ["Hammer"]


async def test_demotion_waits_for_a_product_create_in_flight(database, shop, monkeypatch):
    async with database.sessionmaker() as creating, database.sessionmaker() as demoting:
        held = hold_commit(creating, monkeypatch)
        creation = asyncio.create_task(WRITES["create product"](creating, shop))
        await held.reached.wait()
        demotion = asyncio.create_task(demote(demoting, actor=shop.other_admin, user=shop.admin))
        # The product is written while its author is an admin; the demotion must not commit before it does.
        await wait_for_lock_waiters(database.engine, [demotion])
        assert not demotion.done()

        held.release.set()
        await creation
        demoted = await demotion

    assert demoted.role == Role.USER
    async with database.sessionmaker() as session:
        assert sorted((await session.scalars(select(Product.name))).all()) == ["Hammer", "Saw"]


@pytest.mark.parametrize("lower_id_first", [True, False], ids=["lower id first", "higher id first"])
async def test_of_two_admins_demoting_each_other_the_second_is_refused(database, shop, monkeypatch, lower_id_first):
    first, second = (shop.admin, shop.other_admin) if lower_id_first else (shop.other_admin, shop.admin)
    async with database.sessionmaker() as first_session, database.sessionmaker() as second_session:
        held = hold_commit(first_session, monkeypatch)
        first_demotes = asyncio.create_task(demote(first_session, actor=first, user=second))
        await held.reached.wait()
        second_demotes = asyncio.create_task(demote(second_session, actor=second, user=first))
        await wait_for_lock_waiters(database.engine, [second_demotes])
        assert not second_demotes.done()

        held.release.set()
        await first_demotes
        with pytest.raises(PermissionDeniedError) as refused:
            await second_demotes

    assert refused.value.code == "insufficient_role"
    async with database.sessionmaker() as session:
        query = select(User.id, User.role).where(User.id.in_([first.id, second.id]))
        assert dict((await session.execute(query)).all()) == {first.id: "admin", second.id: "user"}
