"""Categories of the catalogue."""

from fastapi import Request, Response, status

from api.conditional import IF_NONE_MATCH_PARAMETERS, IfMatch, if_none_match, tagged
from api.dependencies import API_PREFIX, READING_SECURITY, Admin, ConnectionDep, PageDep, SessionDep
from api.openapi import CONDITIONAL_READ, CONDITIONAL_WRITE, LOCATION_HEADER, PROTECTED, problems
from api.responses import ModelResponse, created
from api.routing import api_router
from api.schemas import CategoryIn, CategoryOut, Page, PathId
from services import categories as categories_service

router = api_router(prefix=f"{API_PREFIX}/categories", tags=["categories"], responses=PROTECTED)


@router.get(
    "",
    response_model=Page[CategoryOut],
    responses=problems(400),
    summary="Categories, ordered by name",
    openapi_extra=READING_SECURITY,
)
async def list_categories(connection: ConnectionDep, page: PageDep) -> ModelResponse:
    paging = page.bind()
    result = await categories_service.list_categories(connection=connection, page=paging.request)
    return ModelResponse(paging.page_of(CategoryOut, result))


@router.get(
    "/{id}",
    response_model=CategoryOut,
    responses={**problems(404), **CONDITIONAL_READ},
    summary="A category",
    openapi_extra={**READING_SECURITY, **IF_NONE_MATCH_PARAMETERS},
)
async def read_category(request: Request, connection: ConnectionDep, category_id: PathId) -> Response:
    conditions = if_none_match(request)
    category = await categories_service.get_category(connection=connection, category_id=category_id)
    return tagged(CategoryOut, category, if_none_match=conditions)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryOut,
    responses={201: {"headers": LOCATION_HEADER}, **problems(409)},
    summary="Create a category (admin); the slug is derived from the name when absent",
)
async def create_category(admin: Admin, body: CategoryIn, session: SessionDep) -> ModelResponse:
    category = await categories_service.create_category(session=session, actor=admin, name=body.name, slug=body.slug)
    return created(CategoryOut.model_validate(category), f"{API_PREFIX}/categories/{category.id}")


@router.put(
    "/{id}",
    response_model=CategoryOut,
    responses={**problems(404, 409), **CONDITIONAL_WRITE},
    summary="Replace a category (admin)",
)
async def replace_category(
    admin: Admin, category_id: PathId, body: CategoryIn, session: SessionDep, if_match: IfMatch
) -> Response:
    category = await categories_service.replace_category(
        session=session,
        actor=admin,
        category_id=category_id,
        name=body.name,
        slug=body.slug,
        expected_versions=if_match,
    )
    return tagged(CategoryOut, category)


@router.delete(
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404, 409, 412),
    summary="Delete a category no product uses (admin)",
)
async def delete_category(admin: Admin, category_id: PathId, session: SessionDep, if_match: IfMatch) -> Response:
    await categories_service.delete_category(
        session=session, actor=admin, category_id=category_id, expected_versions=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
