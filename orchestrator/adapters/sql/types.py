"""Column types that store Python values exactly and identically on SQLite and PostgreSQL.

- ``U256``: an unsigned 256-bit integer (token base units, wei) as decimal text. SQLite's NUMERIC turns integers
  above 2**63 into floats, so exact integers of that size can only be stored as text there; the same column type
  on PostgreSQL keeps the schema identical. Sums are done in Python, exactly.
- ``UtcDateTime``: a timezone-aware UTC datetime. SQLite drops the zone: values read back are marked UTC again.
- ``StrEnumText``: a ``StrEnum`` as plain text (no native PostgreSQL ENUM type to migrate when a member is added).

Alembic renders these as their ``impl`` (see ``orchestrator/adapters/sql/migrations/env.py``), so migrations never
import them.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=enum.StrEnum)

U256_DIGITS = 78  # len(str(2**256 - 1))


class U256(TypeDecorator[int]):
    """A non-negative integer below 2**256, stored as decimal text in a column ``length`` characters wide."""

    impl = String
    cache_ok = True

    def __init__(self, length: int = U256_DIGITS) -> None:
        super().__init__(length)

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
            raise ValueError(f"not an unsigned 256-bit integer: {value!r}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC. Naive datetimes are refused: they are a bug waiting to happen."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one, e.g. datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrEnumText(TypeDecorator[E]):
    """A ``StrEnum`` member stored as its value."""

    impl = String(32)
    cache_ok = True

    def __init__(self, enum_cls: type[E]) -> None:
        super().__init__()
        self.enum_cls = enum_cls

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_cls(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_cls(value)
