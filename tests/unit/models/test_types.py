"""models/base.py column types without a database: naive datetimes and NULL, as the types bind and read them."""

from datetime import datetime

import pytest

from models.base import Money, UTCDateTime


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_naive_datetimes_are_refused_before_any_sql(dialect_name: str) -> None:
    dialect = type("Dialect", (), {"name": dialect_name})()
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect)  # type: ignore[arg-type]


@pytest.mark.parametrize("column_type", [Money(), UTCDateTime()])
@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_null_passes_through(column_type: Money | UTCDateTime, dialect_name: str) -> None:
    dialect = type("Dialect", (), {"name": dialect_name})()
    assert column_type.process_bind_param(None, dialect) is None  # type: ignore[arg-type]
    assert column_type.process_result_value(None, dialect) is None  # type: ignore[arg-type]
