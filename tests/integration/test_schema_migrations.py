"""The Alembic migrations build exactly the tables the code declares: a column or index added
to `services.intervals` without its migration fails here, before a production upgrade would."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from services import database
from services.intervals import metadata


def test_migrations_at_head_match_the_declared_tables(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    database.upgrade_url(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []
