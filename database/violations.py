"""What a broken constraint means to the shop: the one table from each constraint to its domain error.

The constraints are the guards against concurrent writers (a check beforehand can be passed by two at once), so
repositories flush through `flush_row`, and a reader finds here which constraint answers which 409 or 400.
"""

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from database.integrity import Violation, violated_constraint
from models import Base
from services.errors import ConflictError, ShopError, UnknownReferenceError

# The column values of the row being written, by attribute name.
Row = Mapping[str, Any]

USERNAME_TAKEN = Violation("uq_users_lower_username")
EMAIL_TAKEN = Violation("uq_users_lower_email")

DOMAIN_ERRORS: dict[Violation, Callable[[Row], ShopError]] = {
    Violation("uq_categories_slug"): lambda category: ConflictError(
        f"The slug {category['slug']!r} is already taken", code="slug_taken"
    ),
    Violation("fk_products_category_id_categories"): lambda product: UnknownReferenceError(
        f"Category {product['category_id']} does not exist", code="unknown_category"
    ),
    Violation("fk_products_category_id_categories", still_referenced=True): lambda category: ConflictError(
        f"Category {category['id']} still has products", code="category_in_use"
    ),
    USERNAME_TAKEN: lambda _user: ConflictError("That username is already taken", code="username_taken"),
    EMAIL_TAKEN: lambda _user: ConflictError("That email is already registered", code="email_taken"),
}


async def flush_row(session: AsyncSession, row: Base) -> None:
    """Flush the pending write of `row`; a constraint it breaks that DOMAIN_ERRORS knows raises that error instead.

    Any other IntegrityError, or one whose constraint cannot be told for certain, goes on as it is (a 500):
    a conflict is never guessed.
    """
    state = inspect(row)
    # Read now: a failed flush expires the row, and reading it afterwards would need the aborted transaction.
    values = {column.key: state.dict[column.key] for column in state.mapper.column_attrs if column.key in state.dict}
    try:
        await session.flush()
    except IntegrityError as error:
        violation = violated_constraint(error)
        explain = DOMAIN_ERRORS.get(violation) if violation is not None else None
        if explain is None:
            raise
        raise explain(values) from None
