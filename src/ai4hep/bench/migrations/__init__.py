"""Alembic migrations of the benchmark record database; `ai4hep.bench.store` runs them when it opens a database."""
