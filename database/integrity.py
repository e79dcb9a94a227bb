"""Which named constraint an IntegrityError broke, told the same way on PostgreSQL and on SQLite.

PostgreSQL names it: asyncpg's exception, behind SQLAlchemy's adapter, carries `constraint_name`. SQLite names a
unique index or a check, gives only the columns of another unique key, and says nothing but "FOREIGN KEY constraint
failed" for a foreign key; those are resolved to the same names through the models' metadata and the failed
statement. Whatever cannot be told for certain is answered None, never guessed.

Written by hand: no maintained library reads both drivers' errors (oslo.db's exception filters come with the whole
of OpenStack's database layer, and do not name SQLite's foreign keys either).
"""

import re
import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg
from sqlalchemy import Column, ForeignKeyConstraint, MetaData, PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from models import Base

# The verb and the table of a statement SQLAlchemy wrote.
_WRITE = re.compile(r'\s*(INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
# Every `column =` after SET or a comma, anywhere in the statement: at least the columns it assigns. An extra name
# found can only leave a foreign key unresolved, never resolve it to the wrong one.
_ASSIGNED = re.compile(r'(?:\bSET\b|,)\s*"?(\w+)"?\s*=', re.IGNORECASE)
# Referential actions that carry a change on to other rows, whose own constraints may then be the ones that fail.
_PASSED_ON = frozenset({"CASCADE", "SET DEFAULT"})

_SQLITE_UNIQUE_INDEX = re.compile(r"UNIQUE constraint failed: index '(\w+)'")
_SQLITE_UNIQUE_COLUMNS = re.compile(r"UNIQUE constraint failed: (\w+\.\w+(?:, \w+\.\w+)*)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")
_SQLITE_FOREIGN_KEY = "FOREIGN KEY constraint failed"


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken constraint, by its name in the schema."""

    constraint: str
    # Only for a foreign key, which means a different thing on each side: broken by deleting (or re-keying) a row
    # that others still refer to, rather than by writing a row that refers to one that does not exist.
    still_referenced: bool = False


def violated_constraint(error: IntegrityError, metadata: MetaData = Base.metadata) -> Violation | None:
    """The constraint `error` reports broken, or None when the database does not say which for certain."""
    # asyncpg's own exception is the cause of the one SQLAlchemy's adapter raised.
    cause = error.orig.__cause__
    if isinstance(cause, asyncpg.IntegrityConstraintViolationError):
        return _postgresql_violation(cause, error.statement, metadata)
    if isinstance(error.orig, sqlite3.IntegrityError):
        return _sqlite_violation(str(error.orig), error.statement, metadata)
    return None


def _postgresql_violation(
    cause: asyncpg.IntegrityConstraintViolationError, statement: str | None, metadata: MetaData
) -> Violation | None:
    name = cause.constraint_name
    if name is None:  # NOT NULL: a column, no constraint
        return None
    if not isinstance(cause, asyncpg.ForeignKeyViolationError):
        return Violation(name)
    stake = _foreign_keys_at_stake(statement, metadata)
    if stake is None:
        return None
    referring = name in {key.name for key in stake.referring}
    referred_to = name in {key.name for key in stake.referred_to}
    if referring == referred_to:  # a key of a row deeper down a cascade, or one table referring to itself
        return None
    return Violation(name, still_referenced=referred_to)


def _sqlite_violation(message: str, statement: str | None, metadata: MetaData) -> Violation | None:
    if match := _SQLITE_UNIQUE_INDEX.fullmatch(message):
        return Violation(match[1])
    if match := _SQLITE_UNIQUE_COLUMNS.fullmatch(message):
        return _unique_key_on(match[1].split(", "), metadata)
    if match := _SQLITE_CHECK.fullmatch(message):
        # A check without a name is reported by its expression instead.
        known = {constraint.name for table in metadata.tables.values() for constraint in table.constraints}
        return Violation(match[1]) if match[1] in known else None
    if message == _SQLITE_FOREIGN_KEY:
        stake = _foreign_keys_at_stake(statement, metadata)
        if stake is None or stake.passed_on or len(stake.referring) + len(stake.referred_to) != 1:
            return None
        if stake.referring:
            return Violation(str(stake.referring[0].name))
        return Violation(str(stake.referred_to[0].name), still_referenced=True)
    return None  # NOT NULL, or a message this module does not know


def _unique_key_on(qualified_columns: list[str], metadata: MetaData) -> Violation | None:
    """The unique constraint or index of exactly these columns (`table.column` each, as SQLite lists them)."""
    table = metadata.tables.get(qualified_columns[0].split(".")[0])
    if table is None:
        return None
    columns = {qualified.split(".")[1] for qualified in qualified_columns}
    names = [
        constraint.name
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint) and set(constraint.columns.keys()) == columns
    ]
    names += [
        index.name
        for index in table.indexes
        if index.unique
        and all(isinstance(expression, Column) for expression in index.expressions)
        and {expression.name for expression in index.expressions} == columns
    ]
    return Violation(str(names[0])) if len(names) == 1 else None


class _AtStake(NamedTuple):
    """The foreign keys a write may break."""

    referring: list[ForeignKeyConstraint]  # keys of rows it wrote, to rows that may not exist
    referred_to: list[ForeignKeyConstraint]  # keys of other rows, to rows it deleted or re-keyed
    passed_on: bool  # a change was carried on to other rows, whose own keys it may then have broken


def _foreign_keys_at_stake(statement: str | None, metadata: MetaData) -> _AtStake | None:
    match = _WRITE.match(statement or "")
    table = metadata.tables.get(match[2]) if match else None
    if match is None or table is None:
        return None
    verb = match[1].split()[0].upper()
    # A deleted row gives up every column; an INSERT assigns only in an ON CONFLICT DO UPDATE.
    changed = set(table.columns.keys()) if verb == "DELETE" else set(_ASSIGNED.findall(match.string))
    if verb == "INSERT":
        referring = list(table.foreign_key_constraints)
    elif verb == "UPDATE":
        referring = [key for key in table.foreign_key_constraints if changed & set(key.column_keys)]
    else:
        referring = []
    referred_to = [
        key
        for other in metadata.tables.values()
        for key in other.foreign_key_constraints
        if key.referred_table is table and changed & {element.column.name for element in key.elements}
    ]
    action = "ondelete" if verb == "DELETE" else "onupdate"
    passed_on = any((getattr(key, action) or "").upper() in _PASSED_ON for key in referred_to)
    return _AtStake(referring, referred_to, passed_on)
