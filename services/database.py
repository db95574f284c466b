"""Where SQL history lives and how its schema gets there (Alembic, never `create_all`).

SQLite under `DATA_DIR` by default, so a fresh machine needs no server; PostgreSQL in production
by setting `CCPULSE_DATABASE_URL` alone (a plain `postgresql://` URL is given the asyncpg driver).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url(settings: Settings) -> str:
    url = settings.database_url or f"sqlite+aiosqlite:///{settings.data_dir / 'ccpulse.db'}"
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def make_engine(settings: Settings) -> AsyncEngine:
    url = database_url(settings)
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start (a no-op when current)."""
    upgrade_url(database_url(settings), revision)


def upgrade_url(url: str, revision: str = "head") -> None:
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(settings: Settings) -> None:
    """For callers already inside an event loop: Alembic runs its own loop in a thread."""
    await asyncio.to_thread(upgrade, settings)
