"""The benchmark records store: one SQLite file by default, or a shared PostgreSQL database for a group leaderboard.

Both hold the same `records` table (scalar fields as columns, nested parts as JSON), created and upgraded by the
Alembic migrations in `migrations/` whenever a store is opened. A database written by a newer ai4hep (a schema
revision this one does not know) is refused before anything is written, and every `add` is one transaction, so a
failure never leaves a partial record behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    URL,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    exc,
    func,
    inspect,
    make_url,
    select,
)

from ai4hep.bench.record import Record
from ai4hep.errors import UserError

# Our own name for Alembic's bookkeeping table: a shared PostgreSQL database may hold another application's
# `alembic_version`, whose revisions would otherwise read as "a newer schema".
VERSION_TABLE = "ai4hep_alembic_version"
MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# pg_advisory_xact_lock key ("AI4H"): two clients opening a fresh shared database migrate it one after the other.
_LOCK_KEY = 0x41493448

SCALARS = (
    "id",
    "created",
    "suite",
    "task",
    "model",
    "config_name",
    "budget",
    "primary_metric",
    "dataset_hash",
    "ai4hep_version",
    "artifacts",
)
JSONS = ("seeds", "metrics", "cost", "environment", "dataset_card", "config")

metadata = MetaData()
records = Table(
    "records",
    metadata,
    *(Column(name, String(), primary_key=name == "id", nullable=False) for name in SCALARS),
    *(Column(name, JSON(), nullable=False) for name in JSONS),
    Index("ix_records_task_model", "task", "model"),
    Index("ix_records_suite", "suite"),
)

# JSON has no inf or nan (PostgreSQL rejects them), yet a rejection with no background passing is inf and its error
# nan: those floats are stored as {"__float__": "inf"} and turned back into floats when read.
_FLOAT_KEY = "__float__"


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT_KEY: repr(value)}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {_FLOAT_KEY} and value[_FLOAT_KEY] in ("inf", "-inf", "nan"):
            return float(value[_FLOAT_KEY])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def database_url(url: str | os.PathLike) -> URL:
    """A SQLAlchemy URL from a URL or a plain path (SQLite there); PostgreSQL goes through psycopg 3."""
    text = os.fspath(url)
    if "://" not in text:
        return URL.create("sqlite", database=text)
    try:
        parsed = make_url(text)
    except exc.ArgumentError:
        raise UserError(f"--db {text!r} is not a database URL; give a file path or postgresql://user@host/db") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise UserError(
            f"--db {shown}: the record store supports SQLite and PostgreSQL; give a file path or postgresql://"
        )
    return parsed


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "postgresql":
        # psycopg's default is to wait for the OS (minutes); a leaderboard server that is down should say so quickly.
        args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
        return create_engine(url, connect_args=args)
    engine = create_engine(url)

    # pysqlite commits DDL on its own and opens transactions lazily; SQLAlchemy's recipe makes every block one real
    # transaction, so a migration or an add is all-or-nothing on SQLite as on PostgreSQL.
    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def _reason(error: exc.DBAPIError, password: str | None) -> str:
    """The driver's first line, less its 'connection to server at ... failed:' preamble, never the password."""
    lines = [line.strip() for line in str(error.orig).splitlines() if line.strip()]
    reason = re.sub(r"^.*failed: ", "", lines[0]) if lines else type(error.orig).__name__
    reason = re.sub(r"\s+", " ", re.sub(r"^(FATAL|ERROR):\s*", "", reason))
    return reason.replace(password, "***") if password else reason


class RecordStore:
    """Benchmark records in a SQLite file or a PostgreSQL database, migrated to this ai4hep's schema when opened."""

    def __init__(self, url: str | os.PathLike) -> None:
        self.url = database_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # What messages and repr show: the file, or the URL with its password as ***.
        shown = self.url.render_as_string(hide_password=True)
        self.name = (self.url.database or ":memory:") if self.is_sqlite else shown
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            try:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError(f"{self.name}: cannot create its folder ({e.strerror}); give a writable path") from None
        try:
            self._engine = _engine(self.url)
        except (exc.NoSuchModuleError, ImportError) as e:
            raise UserError(f"{self.name}: no database driver ({e}); reinstall ai4hep with its dependencies") from None
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"RecordStore({self.name!r})"

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A connection in a transaction: committed when the block succeeds, rolled back when it fails."""
        try:
            conn = self._engine.connect()
        except exc.DBAPIError as e:
            raise self._unreachable(e) from None
        with conn, conn.begin():
            yield conn

    def _unreachable(self, error: exc.DBAPIError) -> UserError:
        if self.is_sqlite:
            return self._sqlite_error(error)
        reason = _reason(error, self.url.password)
        where = f"{self.url.host}:{self.url.port or 5432}" if self.url.host else "the local socket"
        return UserError(
            f"cannot connect to PostgreSQL at {where}, database {self.url.database!r} ({reason}); "
            "check that the server is running and the --db URL (host, port, user, password, database)"
        )

    def _migrate(self) -> None:
        """Bring the database to this ai4hep's schema (creating it on first use); refuse a schema from the future."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
        scripts = ScriptDirectory.from_config(config)
        head = scripts.get_current_head()
        known = {script.revision for script in scripts.walk_revisions()}
        try:
            with self._transaction() as conn:
                if not self.is_sqlite:
                    conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
                context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                current = context.get_current_heads()
                newer = [rev for rev in current if rev not in known]
                if newer:
                    raise UserError(
                        f"{self.name}: record database has schema revision {', '.join(newer)}, newer than this ai4hep "
                        f"knows (latest {head}); upgrade ai4hep or use another --db"
                    )
                if current == (head,):
                    return
                if not current and inspect(conn).has_table("records"):
                    raise UserError(
                        f"{self.name}: has a 'records' table that ai4hep did not create; use another --db for records"
                    )
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except exc.DatabaseError as e:
            if self.is_sqlite:
                raise self._sqlite_error(e) from None
            reason = _reason(e, self.url.password)
            raise UserError(
                f"{self.name}: cannot set up the record tables ({reason}); check the user's rights on this database"
            ) from None

    def _sqlite_error(self, error: exc.DBAPIError) -> UserError:
        if "not a database" in str(error.orig):
            return UserError(f"{self.name}: not an SQLite database; give a record database file or a new path")
        reason = _reason(error, None)
        return UserError(
            f"{self.name}: cannot use this SQLite record database ({reason}); check the path and its rights"
        )

    def add(self, record: Record) -> None:
        """Store one record in one transaction; an id that is already there is an error, never an overwrite."""
        data = record.model_dump()
        row = {name: _encode(data[name]) if name in JSONS else data[name] for name in (*SCALARS, *JSONS)}
        try:
            with self._transaction() as conn:
                conn.execute(records.insert().values(**row))
        except exc.IntegrityError:
            if self._exists(record.id):
                raise UserError(
                    f"{self.name}: a record with id {record.id!r} already exists; records are never overwritten, "
                    "give the new one a new id"
                ) from None
            raise

    def _exists(self, id: str) -> bool:
        with self._transaction() as conn:
            return conn.execute(select(records.c.id).where(records.c.id == id)).first() is not None

    def get(self, id: str) -> Record:
        with self._transaction() as conn:
            row = conn.execute(select(records).where(records.c.id == id)).mappings().first()
        if row is None:
            raise UserError(f"{self.name}: no record with id {id!r}; check the id against this --db's records")
        return _record(row)

    def query(self, task: str | None = None, suite: str | None = None, model: str | None = None) -> list[Record]:
        """Records matching every filter given, newest first."""
        stmt = select(records)
        for column, value in (("task", task), ("suite", suite), ("model", model)):
            if value is not None:
                stmt = stmt.where(records.c[column] == value)
        stmt = stmt.order_by(records.c.created.desc(), records.c.id.desc())
        with self._transaction() as conn:
            return [_record(row) for row in conn.execute(stmt).mappings()]

    def latest(self, suite: str | None = None) -> list[Record]:
        """The newest record of each (task, model, config_name, budget) cell: what a leaderboard shows.

        Sorted by task, model, config name and budget.
        """
        cell = (records.c.task, records.c.model, records.c.config_name, records.c.budget)
        rank = (
            func.row_number()
            .over(partition_by=cell, order_by=(records.c.created.desc(), records.c.id.desc()))
            .label("rank")
        )
        ranked = select(records.c.id, rank)
        if suite is not None:
            ranked = ranked.where(records.c.suite == suite)
        newest = ranked.subquery()
        stmt = select(records).join(newest, newest.c.id == records.c.id).where(newest.c.rank == 1).order_by(*cell)
        with self._transaction() as conn:
            return [_record(row) for row in conn.execute(stmt).mappings()]


def _record(row: Any) -> Record:
    data = {name: row[name] for name in SCALARS}
    data.update({name: _decode(row[name]) for name in JSONS})
    return Record.model_validate(data)
