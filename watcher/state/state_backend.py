"""Which store keeps the state: the SQLite file (`[state] path`, the default) or
PostgreSQL (`[state] url`); opened for the daemon's life, closed by its exit stack."""

from __future__ import annotations

from contextlib import AsyncExitStack

from watcher.config.settings import ConfigError, StateSettings
from watcher.state.astore import AsyncStore
from watcher.state.store import Store

__all__ = ["open_state"]


async def open_state(settings: StateSettings, stack: AsyncExitStack) -> AsyncStore:
    """The store every part of the daemon uses; `StateError` when it cannot be opened."""
    if settings.url is None:
        store = Store(settings.path)
        stack.callback(store.close)
        return AsyncStore(store)
    try:  # psycopg: only with [state] url (the `postgres` extra)
        from watcher.state.store_pg import PgStore
        from watcher.state.store_pg_adapter import PgAsyncStore
    except ImportError:
        raise ConfigError(
            "state.url: PostgreSQL needs psycopg: pip install 'runstep-watcher[postgres]'"
        ) from None
    password = settings.password.get_secret_value() if settings.password else None
    pg = await PgStore.open(settings.url, password=password)
    stack.push_async_callback(pg.close)
    return PgAsyncStore(pg)
