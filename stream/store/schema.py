"""The event store's schema, as numbered migrations shared by SQLite and PostgreSQL.

Types are spelled so both read them the same way (SQLite maps ``DOUBLE PRECISION`` to REAL and
``BIGINT`` to INTEGER). A migration is a list of statements; ``("pg", sql)`` / ``("sqlite",
sql)`` run on that backend only.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "EVENT_COLUMNS"]

EVENT_COLUMNS = (
    "event_id", "ts", "camera", "plate", "plate_key", "score", "dscore", "region",
    "vehicle_type", "direction", "known_list", "known_json", "data", "source",
    "vehicle_image", "plate_image", "image_bytes", "node",
)

MIGRATIONS: list[list[str | tuple[str, str]]] = [
    [  # 1: events, the fuzzy-search index, known plates
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            camera TEXT NOT NULL,
            plate TEXT NOT NULL,
            plate_key TEXT NOT NULL,
            score DOUBLE PRECISION,
            dscore DOUBLE PRECISION,
            region TEXT,
            vehicle_type TEXT,
            direction INTEGER,
            known_list TEXT,
            known_json TEXT,
            data TEXT NOT NULL,
            source TEXT NOT NULL,
            vehicle_image TEXT,
            plate_image TEXT,
            image_bytes BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX events_ts ON events (ts, event_id)",
        "CREATE INDEX events_plate ON events (plate_key, ts)",
        "CREATE INDEX events_camera ON events (camera, ts)",
        "CREATE INDEX events_known ON events (known_list, ts)",
        "CREATE INDEX events_images ON events (ts) WHERE image_bytes > 0",
        ("pg", "CREATE INDEX events_plate_pattern ON events (plate_key text_pattern_ops)"),
        # Every plate key under each of its one-character deletions (and itself): two keys
        # one edit apart share a variant, so a fuzzy search is a few index lookups.
        """CREATE TABLE plate_variants (
            variant TEXT NOT NULL,
            plate_key TEXT NOT NULL,
            PRIMARY KEY (variant, plate_key)
        )""",
        """CREATE TABLE known_plates (
            list TEXT NOT NULL,
            plate TEXT NOT NULL,
            name TEXT NOT NULL,
            note TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (list, plate)
        )""",
    ],
    [  # 2: the edge node an event came from (a hub stores many nodes' events; issue 15)
        "ALTER TABLE events ADD COLUMN node TEXT",
        "CREATE INDEX events_node ON events (node, ts)",
    ],
]
