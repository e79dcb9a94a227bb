"""Orders: placing them (with optional Idempotency-Key), reading them, cancelling them, and moving them along
their statuses."""

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from api.conditional import IF_NONE_MATCH_PARAMETERS, IfMatch, if_none_match, tagged
from api.dependencies import (
    API_PREFIX,
    Admin,
    CurrentUser,
    OrderPlacer,
    OrdersReader,
    PageDep,
    SessionDep,
    SettingsDep,
)
from api.openapi import CONDITIONAL_READ, CONDITIONAL_WRITE, LOCATION_HEADER, PROTECTED, problems
from api.responses import ModelResponse
from api.routing import api_router
from api.schemas import IdParam, OrderIn, OrderOut, OrderStatusIn, Page, PathId
from models import Order, OrderStatus
from observability.metrics import ORDERS_PLACED, ORDERS_REFUSED
from services import orders as orders_service
from services.access import orders_visible_to
from services.errors import ShopError
from services.order_status import describe_transitions
from services.orders import OrderLine

router = api_router(prefix=f"{API_PREFIX}/orders", tags=["orders"], responses=PROTECTED)


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_REPLAYED_HEADER = "Idempotency-Replayed"
CREATED_HEADERS = {
    **LOCATION_HEADER,
    IDEMPOTENCY_REPLAYED_HEADER: {
        "description": "`true` on a repeat answered with the first order (same Idempotency-Key and body); "
        "absent on the request that created it",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def render_order(order: Order) -> str:
    return OrderOut.model_validate(order).model_dump_json()


async def idempotency_key_header(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_KEY_HEADER,
            min_length=1,
            max_length=255,
            # Visible ASCII only: header bytes are read as latin-1, so anything else would be stored garbled.
            pattern=r"^[\x21-\x7e]+$",
            description="1-255 characters of visible ASCII (`!` to `~`: no spaces, no other characters); "
            "at most one such header",
        ),
    ] = None,
) -> str | None:
    """The request's one Idempotency-Key: of several, FastAPI would quietly use the first and a proxy maybe another."""
    if key is not None and len(request.headers.getlist(IDEMPOTENCY_KEY_HEADER)) > 1:
        raise RequestValidationError(
            [{"type": "duplicate_header", "loc": ("header", IDEMPOTENCY_KEY_HEADER), "msg": "Send one Idempotency-Key"}]
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key_header)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses={201: {"headers": CREATED_HEADERS}, **problems(400, 409)},
    summary="Place an order (user, admin): all lines' stock is reserved at once, or nothing changes",
    description=(
        "Unit prices come from the catalogue at this moment and `total` is computed by the server. "
        "With `REQUIRE_VERIFIED_EMAIL`, an account whose address is not verified gets 403 `email_not_verified`. "
        "With an `Idempotency-Key`, a repeat of the same body within 24 hours returns the first order again "
        "(201, same body, `Idempotency-Replayed: true`) and changes nothing; a different body with the same key "
        "is 409. A new order is `pending` until paid; unless it is paid by `expires_at` (null when the shop sets "
        "no payment deadline), it is cancelled and its stock put back."
    ),
)
async def place_order(
    user: OrderPlacer,
    body: OrderIn,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> Response:
    try:
        placed = await orders_service.place_order(
            session=session,
            user_id=user.id,
            lines=[OrderLine(product_id=line.product_id, quantity=line.quantity) for line in body.items],
            render=render_order,
            idempotency_key=idempotency_key,
            idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
            payment_ttl=timedelta(seconds=settings.order_payment_ttl_seconds),
        )
    except ShopError as refused:
        ORDERS_REFUSED.labels(code=refused.code).inc()
        raise
    headers = {"Location": f"{API_PREFIX}/orders/{placed.order_id}"}
    if placed.replayed:
        headers[IDEMPOTENCY_REPLAYED_HEADER] = "true"
    else:
        ORDERS_PLACED.inc()
    return Response(
        content=placed.body, status_code=status.HTTP_201_CREATED, media_type="application/json", headers=headers
    )


@router.get(
    "",
    response_model=Page[OrderOut],
    responses=problems(400),
    summary="Orders, newest first: one's own, or everyone's for an admin",
)
async def list_orders(
    reader: OrdersReader,
    session: SessionDep,
    page: PageDep,
    order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
    user_id: Annotated[IdParam | None, Query(description="Admins only: one user's orders")] = None,
) -> ModelResponse:
    # The cursor is bound to whose orders it walks, as the access rule decides it.
    paging = page.bind(user_id=orders_visible_to(actor=reader, user_id=user_id), status=order_status)
    result = await orders_service.list_orders(
        session=session, actor=reader, page=paging.request, user_id=user_id, status=order_status
    )
    return ModelResponse(paging.page_of(OrderOut, result))


@router.get(
    "/{id}",
    response_model=OrderOut,
    responses={**problems(404), **CONDITIONAL_READ},
    summary="An order (its owner, or an admin)",
    openapi_extra=IF_NONE_MATCH_PARAMETERS,
)
async def read_order(request: Request, user: CurrentUser, order_id: PathId, session: SessionDep) -> Response:
    conditions = if_none_match(request)
    order = await orders_service.get_order(session=session, actor=user, order_id=order_id)
    return tagged(OrderOut, order, if_none_match=conditions)


@router.patch(
    "/{id}/status",
    response_model=OrderOut,
    responses={**problems(404, 409), **CONDITIONAL_WRITE},
    summary="Change an order's status (admin)",
    description=f"Allowed transitions: {describe_transitions()}. Anything else is 409 `invalid_status_transition`; "
    "paying a pending order from its `expires_at` on is 409 `order_expired`. Cancelling puts the stock back.",
)
async def change_order_status(
    admin: Admin, order_id: PathId, body: OrderStatusIn, session: SessionDep, if_match: IfMatch
) -> Response:
    order = await orders_service.change_order_status(
        session=session, actor=admin, order_id=order_id, status=body.status, expected_versions=if_match
    )
    return tagged(OrderOut, order)


@router.post(
    "/{id}/cancel",
    response_model=OrderOut,
    responses={**problems(404, 409), **CONDITIONAL_WRITE},
    summary="Cancel an order (its owner while pending; an admin while pending or paid); its stock goes back",
    description="Any other status is 409 `invalid_status_transition`. Another user's order is 404, as reading it is.",
)
async def cancel_order(user: CurrentUser, order_id: PathId, session: SessionDep, if_match: IfMatch) -> Response:
    order = await orders_service.cancel_order(
        session=session, actor=user, order_id=order_id, expected_versions=if_match
    )
    return tagged(OrderOut, order)
