"""Products of the catalogue, with filters, sorting and pages."""

from decimal import Decimal
from typing import Annotated

from fastapi import Query, Request, Response, status

from api.conditional import IF_NONE_MATCH_PARAMETERS, IfMatch, if_none_match, tagged
from api.dependencies import API_PREFIX, READING_SECURITY, Admin, ConnectionDep, PageDep, SessionDep
from api.openapi import CONDITIONAL_READ, CONDITIONAL_WRITE, LOCATION_HEADER, PROTECTED, problems
from api.responses import ModelResponse, created
from api.routing import api_router
from api.schemas import IdParam, NoNul, Page, PathId, ProductIn, ProductOut, ProductSort
from services import products as products_service
from services.catalogue import ProductFilter
from services.products import ProductData

router = api_router(prefix=f"{API_PREFIX}/products", tags=["products"], responses=PROTECTED)

PriceBound = Annotated[Decimal | None, Query(ge=0, le=Decimal("1000000000"), decimal_places=2, allow_inf_nan=False)]


def _data(body: ProductIn) -> ProductData:
    return ProductData(
        name=body.name, description=body.description, price=body.price, stock=body.stock, category_id=body.category_id
    )


@router.get(
    "",
    response_model=Page[ProductOut],
    responses=problems(400),
    summary="Products, filtered, sorted and paged",
    openapi_extra=READING_SECURITY,
)
async def list_products(
    connection: ConnectionDep,
    page: PageDep,
    category_id: Annotated[IdParam | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Case-insensitive substring of the name; % and _ match themselves"),
        NoNul,
    ] = None,
    min_price: PriceBound = None,
    max_price: PriceBound = None,
    in_stock: Annotated[bool | None, Query(description="true: stock > 0; false: stock = 0")] = None,
    sort: Annotated[ProductSort, Query(description="Sort key; prefix - for descending")] = "id",
) -> ModelResponse:
    filters = ProductFilter(
        category_id=category_id, q=q, min_price=min_price, max_price=max_price, in_stock=in_stock, sort=sort
    )
    paging = page.bind(filters=filters)
    result = await products_service.list_products(connection=connection, filters=filters, page=paging.request)
    return ModelResponse(paging.page_of(ProductOut, result))


@router.get(
    "/{id}",
    response_model=ProductOut,
    responses={**problems(404), **CONDITIONAL_READ},
    summary="A product",
    description="Its ETag changes with every change, stock taken or put back by orders included.",
    openapi_extra={**READING_SECURITY, **IF_NONE_MATCH_PARAMETERS},
)
async def read_product(request: Request, connection: ConnectionDep, product_id: PathId) -> Response:
    conditions = if_none_match(request)
    product = await products_service.get_product(connection=connection, product_id=product_id)
    return tagged(ProductOut, product, if_none_match=conditions)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductOut,
    responses={201: {"headers": LOCATION_HEADER}, **problems(400)},
    summary="Create a product (admin)",
)
async def create_product(admin: Admin, body: ProductIn, session: SessionDep) -> ModelResponse:
    product = await products_service.create_product(session=session, actor=admin, data=_data(body))
    return created(ProductOut.model_validate(product), f"{API_PREFIX}/products/{product.id}")


@router.put(
    "/{id}",
    response_model=ProductOut,
    responses={**problems(400, 404), **CONDITIONAL_WRITE},
    summary="Replace a product (admin)",
    description="Send the ETag read with the product as If-Match, so that a restock based on a stock level "
    "orders have changed since is refused (412) rather than written over it.",
)
async def replace_product(
    admin: Admin, product_id: PathId, body: ProductIn, session: SessionDep, if_match: IfMatch
) -> Response:
    product = await products_service.replace_product(
        session=session, actor=admin, product_id=product_id, data=_data(body), expected_versions=if_match
    )
    return tagged(ProductOut, product)


@router.delete(
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404, 412),
    summary="Remove a product from the catalogue (admin); orders holding it keep their items",
)
async def delete_product(admin: Admin, product_id: PathId, session: SessionDep, if_match: IfMatch) -> Response:
    await products_service.delete_product(
        session=session, actor=admin, product_id=product_id, expected_versions=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
