"""SQL functions whose spelling differs between PostgreSQL and SQLite."""

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

SQLITE_CASEFOLD = "shop_casefold"


class casefold(GenericFunction[str]):  # noqa: N801 - SQL functions are spelled in lower case
    """Unicode-aware lower case. SQLite's own lower() folds ASCII only, so SQLite gets a Python function."""

    type = String()
    inherit_cache = True


@compiles(casefold)
def _casefold_default(element: casefold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(casefold, "sqlite")
def _casefold_sqlite(element: casefold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_CASEFOLD}({compiler.process(element.clauses, **kw)})"


def sqlite_casefold(value: str | None) -> str | None:
    return None if value is None else value.lower()


def escape_like(text: str) -> str:
    """`text` as a LIKE pattern that matches it literally (with ESCAPE '\\'): `%` and `_` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
