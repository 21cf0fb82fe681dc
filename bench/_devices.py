"""A paired whatsmeow device, made offline: what a store holds after a real QR scan, minus WhatsApp.

Shared by the neonize driver tests and ``bench/neonize.py`` (one copy).

whatsmeow keeps each paired device as one row of ``whatsmeow_device`` (its JID
``user:device@server``, its Noise and Signal identity keys, its signed pre-key
and the ADV identity the phone signed). Loading a device (``GetDevice``) only
checks the key lengths, so generated keys make a device whatsmeow resumes like
a paired one: ``connect()`` goes straight to the dial (no QR), which fails here
for want of a network. The tables are neonize's own: a first ``connect()``
creates and migrates them; :func:`add_device` then inserts the row, with the
columns the installed whatsmeow defines.
"""

from __future__ import annotations

import os
import random
import sqlite3

_GENERATED = {
    "registration_id": lambda: random.randrange(1, 1 << 31),
    "noise_key": lambda: os.urandom(32),
    "identity_key": lambda: os.urandom(32),
    "signed_pre_key": lambda: os.urandom(32),
    "signed_pre_key_id": lambda: 1,
    "signed_pre_key_sig": lambda: os.urandom(64),
    "adv_key": lambda: os.urandom(32),
    "adv_details": lambda: b"",
    "adv_account_sig": lambda: os.urandom(64),
    "adv_account_sig_key": lambda: os.urandom(32),
    "adv_device_sig": lambda: os.urandom(64),
}
"""Every NOT NULL column without a default, and a value whatsmeow accepts for it."""


def _is_postgres(store: str) -> bool:
    return store.startswith(("postgres://", "postgresql://"))


def add_device(store: str, jid: str) -> None:
    """Insert a paired device ``jid`` (``user:device@server``) into neonize's store (SQLite path or DSN)."""
    columns = ["jid", *_GENERATED]
    values = [jid, *(make() for make in _GENERATED.values())]
    if _is_postgres(store):
        import psycopg  # a test dependency: only PostgreSQL device stores need it

        placeholders = ", ".join(["%s"] * len(columns))
        with psycopg.connect(store) as conn:
            conn.execute(f"INSERT INTO whatsmeow_device ({', '.join(columns)}) VALUES ({placeholders})", values)
        return
    placeholders = ", ".join(["?"] * len(columns))
    with sqlite3.connect(store) as conn:
        conn.execute(f"INSERT INTO whatsmeow_device ({', '.join(columns)}) VALUES ({placeholders})", values)
    conn.close()


def devices(store: str) -> list[str]:
    """The JIDs of the devices the store holds."""
    query = "SELECT jid FROM whatsmeow_device ORDER BY jid"
    if _is_postgres(store):
        import psycopg

        with psycopg.connect(store) as conn:
            return [row[0] for row in conn.execute(query).fetchall()]
    with sqlite3.connect(store) as conn:
        rows = [row[0] for row in conn.execute(query).fetchall()]
    conn.close()
    return rows
