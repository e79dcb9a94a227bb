"""Domain events: their types, who caused them, and the CloudEvents 1.0 envelope they are read and published in.

A service records an event inside the unit of work of the change it describes (`record_event`); the unit of work
stores it in the same commit, so an event exists if and only if its change committed.
"""

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import stage_event
from database.pagination import CursorRequest, Page
from database.repositories import events as events_repo
from models import Category, Event, Order, Product, User
from models.base import utcnow
from representations import representation

# Who caused a change nobody asked for (an expired order's cancellation).
SYSTEM_ACTOR = "system"


class EventType(StrEnum):
    USER_REGISTERED = "shop.user.registered"
    USER_UPDATED = "shop.user.updated"
    USER_DELETED = "shop.user.deleted"
    CATEGORY_CREATED = "shop.category.created"
    CATEGORY_UPDATED = "shop.category.updated"
    CATEGORY_DELETED = "shop.category.deleted"
    PRODUCT_CREATED = "shop.product.created"
    PRODUCT_UPDATED = "shop.product.updated"
    PRODUCT_DELETED = "shop.product.deleted"
    ORDER_CREATED = "shop.order.created"
    ORDER_STATUS_CHANGED = "shop.order.status_changed"


# The collection each kind of resource lives in: an event's subject is `<collection>/<id>`, as in its URL.
_COLLECTIONS: dict[type, str] = {User: "users", Category: "categories", Product: "products", Order: "orders"}

Resource = User | Category | Product | Order


def user_actor(user_id: int) -> str:
    return f"users/{user_id}"


def subject_of(resource: Resource) -> str:
    return f"{_COLLECTIONS[type(resource)]}/{resource.id}"


def record_event(session: AsyncSession, *, type: EventType, subject: str, actor: str, data: dict[str, Any]) -> None:
    """Record that a change happened; it is stored when, and only if, the surrounding unit of work commits."""
    stage_event(
        session,
        {
            "event_id": str(uuid.uuid4()),
            "type": type.value,
            "subject": subject,
            "actor": actor,
            "time": utcnow(),
            "data": data,
        },
    )


def record_change(session: AsyncSession, *, type: EventType, resource: Resource, actor: str, **extra: Any) -> None:
    """Record that `resource` was created or changed: `data` is the resource as its GET now returns it (and `extra`).

    Call it once the change is flushed, so that what is recorded is what commits.
    """
    record_event(
        session, type=type, subject=subject_of(resource), actor=actor, data={**representation(resource), **extra}
    )


def record_update(
    session: AsyncSession, *, type: EventType, resource: Resource, before: dict[str, Any], actor: str
) -> None:
    """Record that `resource` changed, unless its representation is still `before` (what it was when read): a
    write that changes nothing a client can see, such as a PUT of what is already there, is no event."""
    after = representation(resource)
    if after != before:
        record_event(session, type=type, subject=subject_of(resource), actor=actor, data=after)


def record_deletion(session: AsyncSession, *, type: EventType, resource: Resource, actor: str) -> None:
    record_event(session, type=type, subject=subject_of(resource), actor=actor, data={"id": resource.id})


async def forget_earlier_data(session: AsyncSession, *, resource: Resource) -> None:
    """Leave only `{"id"}` in the stored events about `resource` (an erased account's name and address)."""
    await events_repo.redact_subject(session, subject=subject_of(resource), data={"id": resource.id})


async def list_events(
    *, session: AsyncSession, page: CursorRequest, type: str | None = None, subject: str | None = None
) -> Page[Event]:
    """The feed: events in commit order, of an exact `type` or a prefix of types ending in ".", of `subject`."""
    return await events_repo.list_events(session, page, type=type, subject=subject)


def resume_after(page: CursorRequest, result: Page[Event]) -> int:
    """The id the feed goes on after: the page's last event, or where the request started when it had none.

    A feed always has a next page, for what commits later: a reader that sees id n has seen every id below it.
    """
    if result.items:
        return result.items[-1].id
    return page.after[0] if page.after else 0


def cloud_event(event: Event) -> dict[str, Any]:
    """The event as CloudEvents 1.0 structured JSON: what the feed lists and NATS receives."""
    return {
        "specversion": "1.0",
        "id": event.event_id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": event.time.isoformat(),
        "datacontenttype": "application/json",
        "actor": event.actor,
        "data": event.data,
    }
