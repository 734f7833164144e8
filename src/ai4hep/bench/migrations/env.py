"""Alembic environment: runs the migrations on the connection `RecordStore` hands over, inside its transaction.

There is no alembic.ini and no logging set-up: the store builds the Config in code and passes the open connection in
`config.attributes["connection"]`, so opening a store and migrating it are one transaction.
"""

from __future__ import annotations

from alembic import context

from ai4hep.bench.store import VERSION_TABLE

if context.is_offline_mode():
    raise RuntimeError("the record database migrations run online only (through ai4hep.bench.store.RecordStore)")

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
