"""Alembic environment for Deworker's database.

Run programmatically by ``orchestrator.adapters.sql.db.migrate(engine)`` (the engine arrives in ``config.attributes``),
or from the command line for writing revisions (``alembic -c orchestrator/adapters/sql/migrations/alembic.ini -x
url=...``).
The target metadata is every table registered in ``SQLModel.metadata`` (see ``db.target_metadata``).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, Engine
from sqlalchemy.types import TypeDecorator

from orchestrator.adapters.sql.db import make_engine, target_metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our ``TypeDecorator`` column types as their plain ``impl`` so revisions never import app code."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        autogen_context.imports.add("import sqlalchemy as sa")
        return f"sa.{obj.impl_instance!r}"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=True,  # SQLite cannot ALTER most things: batch mode copies the table instead
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported: run against a database with -x url=...")
    engine: Engine | None = context.config.attributes.get("engine")
    if engine is None:
        url = context.get_x_argument(as_dictionary=True).get("url")
        if not url:
            raise SystemExit(
                "pass the database URL: alembic -c orchestrator/adapters/sql/migrations/alembic.ini -x url=..."
            )
        engine = make_engine(url)
    with engine.connect() as connection:
        run(connection)


main()
