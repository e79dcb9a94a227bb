"""Categories of the catalogue."""

from fastapi import Response, status

from api.dependencies import API_PREFIX, Admin, CurrentUser, PageDep, SessionDep
from api.openapi import LOCATION_HEADER, PROTECTED, problems
from api.responses import ModelResponse, created
from api.routing import api_router
from api.schemas import CategoryIn, CategoryOut, Page, PathId
from services import categories as categories_service

router = api_router(prefix=f"{API_PREFIX}/categories", tags=["categories"], responses=PROTECTED)


@router.get("", response_model=Page[CategoryOut], responses=problems(400), summary="Categories, ordered by name")
async def list_categories(_user: CurrentUser, session: SessionDep, page: PageDep) -> ModelResponse:
    paging = page.bind()
    result = await categories_service.list_categories(session=session, page=paging.request)
    return ModelResponse(paging.page_of(CategoryOut, result))


@router.get("/{id}", response_model=CategoryOut, responses=problems(404), summary="A category")
async def read_category(_user: CurrentUser, category_id: PathId, session: SessionDep) -> ModelResponse:
    return ModelResponse(
        CategoryOut.model_validate(await categories_service.get_category(session=session, category_id=category_id))
    )


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


@router.put("/{id}", response_model=CategoryOut, responses=problems(404, 409), summary="Replace a category (admin)")
async def replace_category(admin: Admin, category_id: PathId, body: CategoryIn, session: SessionDep) -> ModelResponse:
    category = await categories_service.replace_category(
        session=session, actor=admin, category_id=category_id, name=body.name, slug=body.slug
    )
    return ModelResponse(CategoryOut.model_validate(category))


@router.delete(
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404, 409),
    summary="Delete a category no product uses (admin)",
)
async def delete_category(admin: Admin, category_id: PathId, session: SessionDep) -> Response:
    await categories_service.delete_category(session=session, actor=admin, category_id=category_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
