"""Accounts: one's own profile, and the admin's view and control of everyone's."""

from fastapi import Response

from api.conditional import IfMatch, IfNoneMatch, tagged
from api.dependencies import API_PREFIX, Admin, CurrentUser, PageDep, SessionDep, UserReader
from api.openapi import CONDITIONAL_READ, CONDITIONAL_WRITE, PROTECTED, problems
from api.responses import ModelResponse
from api.routing import api_router
from api.schemas import Page, PathId, UserOut, UserPatch
from services import users as users_service

router = api_router(prefix=f"{API_PREFIX}/users", tags=["users"], responses=PROTECTED)


@router.get("/me", response_model=UserOut, responses=CONDITIONAL_READ, summary="The signed-in user")
async def read_me(user: CurrentUser, if_none_match: IfNoneMatch) -> Response:
    return tagged(UserOut, user, if_none_match=if_none_match)


@router.get("", response_model=Page[UserOut], responses=problems(400), summary="All users, by id (admin)")
async def list_users(_admin: Admin, session: SessionDep, page: PageDep) -> ModelResponse:
    paging = page.bind()
    result = await users_service.list_users(session=session, page=paging.request)
    return ModelResponse(paging.page_of(UserOut, result))


@router.get(
    "/{id}",
    response_model=UserOut,
    responses={**problems(404), **CONDITIONAL_READ},
    summary="A user (admin, or that user itself)",
)
async def read_user(reader: UserReader, user_id: PathId, session: SessionDep, if_none_match: IfNoneMatch) -> Response:
    user = await users_service.get_user(session=session, actor=reader, user_id=user_id)
    return tagged(UserOut, user, if_none_match=if_none_match)


@router.patch(
    "/{id}",
    response_model=UserOut,
    responses={**problems(404, 409), **CONDITIONAL_WRITE},
    summary="Change a user's role or active flag (admin); effective on that user's next request",
)
async def update_user(
    admin: Admin, user_id: PathId, body: UserPatch, session: SessionDep, if_match: IfMatch
) -> Response:
    user = await users_service.update_user(
        session=session,
        actor=admin,
        user_id=user_id,
        role=body.role,
        is_active=body.is_active,
        expected_versions=if_match,
    )
    return tagged(UserOut, user)
