"""The records store on SQLite and on a real PostgreSQL server (a throwaway one this module starts and stops)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ai4hep.bench.record import Cost, Record, Spread
from ai4hep.bench.store import VERSION_TABLE, RecordStore, database_url, metadata
from ai4hep.errors import UserError

PG_USER, PG_PASSWORD = "ai4hep", "pg-Secret-4711"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 (password auth) for this session; yields the URL of its `postgres` database.

    As root the server runs as the `postgres` user (PostgreSQL refuses root), in a folder under /tmp it owns.
    """
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl); `make test` installs Debian's postgresql")
    root = Path(tempfile.mkdtemp(prefix="ai4hep-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log, pwfile = root / "data", root / "server.log", root / "password"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], cwd=root, check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}", "-A", "scram-sha-256", "-N")
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c shared_buffers=16MB -c max_connections=30"
        run(str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options)
    except subprocess.CalledProcessError as e:
        server_log = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {e.stderr}\n{server_log}")
    try:
        yield f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"],
            cwd=root,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def _new_pg_database(server_url: str) -> str:
    """A fresh, empty database on the session's server: each test starts from nothing, as with a new SQLite file."""
    name = f"records_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(database_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new record database: a SQLite path (in a folder that does not exist yet) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "bench" / "records.sqlite")
    return _new_pg_database(request.getfixturevalue("pg_server"))


def _sql(db: str, query: str) -> list[tuple]:
    """Raw SQL on the database behind `db`, outside the store: what is really there."""
    engine = sa.create_engine(database_url(db))
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(query)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _count(db: str) -> int:
    return _sql(db, "SELECT count(*) FROM records")[0][0]


def make_record(**fields: object) -> Record:
    """A realistic record: spreads over three seeds, an infinite rejection with a nan error, nested config/env."""
    base: dict = {
        "id": uuid.uuid4().hex,
        "created": "2025-03-01T12:00:00.123456+00:00",
        "suite": "jet-tagging-v1",
        "task": "top",
        "model": "particlenet",
        "config_name": "top_particlenet_small",
        "budget": "small",
        "seeds": [1, 2, 3],
        "metrics": {
            "auc": Spread(mean=0.9812, std=0.0011, values=[0.9801, 0.9812, 0.9823], error=0.0004),
            "rejection@0.3": Spread(mean=812.5, std=40.25, values=[770.0, 812.5, 855.0], error=31.7),
            "rejection@0.1": Spread(
                mean=float("inf"), std=None, values=[float("inf"), None, 1e308], error=float("nan")
            ),
        },
        "primary_metric": "rejection@0.3",
        "cost": Cost(
            train_jets_per_s=5321.5,
            infer_jets_per_s=48210.0,
            peak_rss_mb=1432.7,
            cpu_time_s=812.25,
            wall_time_s=433.0,
            energy_j=21650.0,
            energy_method="model: 812.25 cpu s x 26.65 W",
        ),
        "environment": {
            "packages": {"ai4hep": "0.1.0", "torch": "2.13.0", "numpy": "2.1.3"},
            "python": "3.11.7",
            "cpu": "AMD EPYC 7763 64-Core Processor",
            "cores": 2,
            "git": "0123456789abcdef0123456789abcdef01234567-dirty",
        },
        "dataset_hash": "sha256:" + "ab" * 32,
        "dataset_card": {"name": "top", "jets": 240, "shards": 2, "generator": {"pythia": "8.317", "seed": 11}},
        "config": {
            "model": {"name": "particlenet", "k": 16, "dropout": 0.1, "convs": [[16, [64, 64]], [8, [128, 128]]]},
            "train": {"lr": 3e-4, "epochs": 20, "seed": 1, "amp": False, "scheduler": None},
            "name": "täst ✓",
        },
        "artifacts": "bench/artifacts/top_particlenet_small",
        "ai4hep_version": "0.1.0",
    }
    base.update(fields)
    return Record.model_validate(base)


def test_round_trip_is_exact(db: str) -> None:
    record = make_record()
    with RecordStore(db) as store:
        store.add(record)
    with RecordStore(db) as store:  # a second open: the migration finds the schema current and leaves it be
        got = store.get(record.id)
    # repr, not ==: nan != nan, and repr also checks key order, None and the exact floats
    assert repr(got.model_dump()) == repr(record.model_dump())
    assert got.metrics["rejection@0.1"].mean == float("inf")
    # scalars are real columns, filterable by SQL
    assert _sql(db, "SELECT task, model, budget FROM records") == [("top", "particlenet", "small")]


def test_schema_matches_the_migrations(db: str) -> None:
    """The table the migrations create is the one the store's queries describe (no drift between the two)."""
    RecordStore(db).close()
    engine = sa.create_engine(database_url(db))
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata) == []
        inspector = sa.inspect(conn)
        assert {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("records")} == {
            "ix_records_task_model": ["task", "model"],
            "ix_records_suite": ["suite"],
        }
        assert inspector.has_table(VERSION_TABLE)
    engine.dispose()


def test_query_newest_first_and_latest_per_cell(db: str) -> None:
    old = make_record(created="2025-03-01T10:00:00+00:00")
    new = make_record(created="2025-03-02T10:00:00+00:00")  # same cell as `old`, a day later
    bdt = make_record(created="2025-03-01T11:00:00+00:00", model="bdt", config_name="top_bdt")
    large = make_record(created="2025-02-01T11:00:00+00:00", budget="full")
    other = make_record(created="2025-03-03T10:00:00+00:00", suite="flavour-v1", task="flavour", model="gn2")
    with RecordStore(db) as store:
        for record in (old, bdt, new, other, large):
            store.add(record)
        assert [r.id for r in store.query()] == [other.id, new.id, bdt.id, old.id, large.id]
        assert [r.id for r in store.query(task="top", model="particlenet")] == [new.id, old.id, large.id]
        assert [r.id for r in store.query(suite="flavour-v1")] == [other.id]
        assert store.query(task="qg") == []
        assert [r.id for r in store.latest(suite="jet-tagging-v1")] == [bdt.id, large.id, new.id]
        assert {r.id for r in store.latest()} == {bdt.id, large.id, new.id, other.id}


def test_duplicate_id_is_refused_and_changes_nothing(db: str) -> None:
    record = make_record()
    with RecordStore(db) as store:
        store.add(record)
        with pytest.raises(UserError, match="already exists"):
            store.add(make_record(id=record.id, model="bdt"))
        assert _count(db) == 1
        assert store.get(record.id).model == "particlenet"
        with pytest.raises(UserError, match="no record with id 'nope'"):
            store.get("nope")


def test_newer_schema_is_refused_before_writing(db: str) -> None:
    with RecordStore(db) as store:
        store.add(make_record())
    _sql(db, f"UPDATE {VERSION_TABLE} SET version_num = 'f00dcafe9999'")
    with pytest.raises(UserError) as err:
        RecordStore(db)
    message = str(err.value)
    assert "schema revision f00dcafe9999, newer than this ai4hep knows (latest 0001)" in message
    assert "\n" not in message
    assert _count(db) == 1
    assert _sql(db, f"SELECT version_num FROM {VERSION_TABLE}") == [("f00dcafe9999",)]


def test_unreachable_postgresql_is_one_quick_error_without_password() -> None:
    port = _free_port()  # nothing listens there once the probe socket is closed
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        RecordStore(f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/records?connect_timeout=3")
    message = str(err.value)
    assert time.monotonic() - start < 5
    assert f"127.0.0.1:{port}" in message and "check that the server is running" in message
    assert PG_PASSWORD not in message and "\n" not in message


def test_wrong_password_and_repr_hide_the_password(pg_server: str) -> None:
    url = _new_pg_database(pg_server)
    wrong = url.replace(PG_PASSWORD, "Wrong-Pw-0815")
    with pytest.raises(UserError, match="password authentication failed") as err:
        RecordStore(wrong)
    assert "Wrong-Pw-0815" not in str(err.value)
    with RecordStore(url) as store:
        assert PG_PASSWORD not in repr(store) and "***" in repr(store)
    assert _sql(url, "SELECT count(*) FROM records") == [(0,)]


def test_text_file_is_not_a_record_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 20)
    before = path.read_bytes()
    with pytest.raises(UserError, match="not an SQLite database"):
        RecordStore(path)
    assert path.read_bytes() == before


def test_foreign_records_table_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE records (name TEXT)")
    with pytest.raises(UserError, match="did not create"):
        RecordStore(path)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"records"}
