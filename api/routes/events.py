"""The event feed: every change of state, in commit order, for consumers and as the audit trail (admin)."""

from typing import Annotated

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError

from api.cursors import list_scope
from api.dependencies import API_PREFIX, Admin, SessionDep
from api.openapi import PROTECTED, problems
from api.responses import ModelResponse
from api.routing import api_router
from api.schemas import EVENT_SUBJECT_PATTERN, EVENT_TYPE_FILTER_PATTERN, CloudEventOut, Page
from database.pagination import CursorRequest
from services import events as events_service

router = api_router(prefix=f"{API_PREFIX}/events", tags=["events"], responses=PROTECTED)

FEED_CURSOR_DESCRIPTION = (
    "Empty or absent: from the first event. Else a page's `next_cursor`, which works only with the `type` and "
    "`subject` of the request that returned it (anything else is 400 `invalid_cursor`)."
)


@router.get(
    "",
    response_model=Page[CloudEventOut],
    responses=problems(400),
    summary="Every change of state, oldest first, in commit order (admin)",
    description=(
        "A cursor list only: `page` is 422, `total`, `page` and `pages` are null. Unlike other lists, "
        "`next_cursor` is never null: on the last page it points past the last event, and following it returns "
        "the events committed since (an empty page while there are none). A client that keeps following "
        "`next_cursor` sees every event exactly once, in commit order, whatever processes commit concurrently; "
        "one that may see an event twice (a retry) deduplicates by its `id`."
    ),
)
async def list_events(
    request: Request,
    _admin: Admin,
    session: SessionDep,
    event_type: Annotated[
        str | None,
        Query(
            alias="type",
            max_length=64,
            pattern=EVENT_TYPE_FILTER_PATTERN,
            description='An event type (`shop.order.created`), or a prefix of types ending in "." (`shop.order.`)',
        ),
    ] = None,
    subject: Annotated[
        str | None, Query(max_length=64, pattern=EVENT_SUBJECT_PATTERN, description="A resource: `orders/42`")
    ] = None,
    size: Annotated[int, Query(ge=1, le=100, description="Events per page")] = 20,
    cursor: Annotated[str | None, Query(description=FEED_CURSOR_DESCRIPTION)] = None,
) -> ModelResponse:
    if "page" in request.query_params:
        raise RequestValidationError(
            [{"type": "cursor_only", "loc": ("query", "page"), "msg": "The event feed has cursors, not page numbers"}]
        )
    codec = request.app.state.cursors
    scope = list_scope(request.scope["route"].path, {"type": event_type, "subject": subject})
    page = CursorRequest(size=size, after=codec.decode(scope, cursor) if cursor else None)
    result = await events_service.list_events(session=session, page=page, type=event_type, subject=subject)
    after = events_service.resume_after(page, result)
    body = Page[CloudEventOut](
        items=[CloudEventOut.model_validate(events_service.cloud_event(event)) for event in result.items],
        total=None,
        page=None,
        size=size,
        pages=None,
        next_cursor=codec.encode(scope, (after,)),
    )
    return ModelResponse(body)
