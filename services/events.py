"""Domain events: their types, who caused them, and the CloudEvents 1.0 envelope they are read and published in.

A service records an event inside the unit of work of the change it describes (`record_event`); the unit of work
stores it in the same commit, so an event exists if and only if its change committed.
"""

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import stage_event
from models import Event
from models.base import utcnow

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


def user_actor(user_id: int) -> str:
    return f"users/{user_id}"


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
