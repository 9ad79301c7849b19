"""The event store (SQLite by default, PostgreSQL on request) and its queries."""

from stream.store.backend import StoreError
from stream.store.config import StoreConfig
from stream.store.events import EventStore, StoredEvent, open_store
from stream.store.query import EventQuery, Page, QueryError

__all__ = ["EventStore", "StoredEvent", "open_store", "StoreConfig", "StoreError", "EventQuery",
           "Page", "QueryError"]
