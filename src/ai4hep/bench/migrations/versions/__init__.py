"""One file per schema revision of the record database (Alembic skips this `__init__`)."""
