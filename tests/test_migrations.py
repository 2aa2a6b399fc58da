"""Upgrading a database that holds data keeps every row.

The suite otherwise builds its schema from nothing, which cannot show what an upgrade does to a
database in use: on SQLite a table altered in batch mode is copied and the old one dropped, and
with foreign keys enforced that drop fails, or deletes the rows of every table pointing at it.
Here every table at revision 0004 (the schema before this year's changes) gets a row, filled
from its own columns, and the upgrade to the newest revision must keep them all.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime

import pytest
from flask_migrate import upgrade
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SAWarning

from portal import create_app
from portal.extensions import db
from tests.conftest import _database_url

OLD = "0004"


def _value(column, parents: dict):
    kind = column.type
    for fk in column.foreign_keys:
        return parents[fk.column.table.name]
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer | Numeric):
        return 1
    if isinstance(kind, DateTime):
        return datetime(2026, 1, 5, 10, tzinfo=UTC).replace(tzinfo=None)
    if isinstance(kind, Date):
        return date(2026, 1, 5)
    if isinstance(kind, JSON):
        return {}
    return "x"


def _needed(column) -> bool:
    if column.primary_key and isinstance(column.type, Integer) and not column.foreign_keys:
        return False  # the database numbers it
    return not column.nullable


def _fill_every_table(connection) -> dict[str, int]:
    """One row per table, parents first, each foreign key pointing at its parent's row; the
    tables the migrations fill themselves (products and their checklists) as they are."""
    metadata = MetaData()
    with warnings.catch_warnings():  # organization and user point at each other: known
        warnings.simplefilter("ignore", SAWarning)
        metadata.reflect(connection)
        ordered = metadata.sorted_tables
    parents: dict[str, object] = {}
    counts: dict[str, int] = {}
    waiting = [t for t in ordered if t.name != "alembic_version"]
    while waiting:
        ready = [t for t in waiting
                 if all(fk.column.table.name in parents or fk.column.table is t
                        for c in t.columns if _needed(c) for fk in c.foreign_keys)]
        assert ready, [t.name for t in waiting]
        for table in ready:
            waiting.remove(table)
            key = next(iter(table.primary_key.columns))
            present = connection.execute(select(func.count()).select_from(table)).scalar()
            if not present:
                # Every foreign key is filled when its parent is, nullable or not: the rows that
                # point at others are the ones an upgrade can lose.
                values = {c.name: _value(c, parents) for c in table.columns
                          if _needed(c) or any(fk.column.table.name in parents
                                               for fk in c.foreign_keys)}
                connection.execute(insert(table).values(**values))
            counts[table.name] = present or 1
            parents[table.name] = connection.execute(select(key).limit(1)).scalar()
    return counts


def _counts(connection, names) -> dict[str, int]:
    metadata = MetaData()
    metadata.reflect(connection, only=list(names))
    return {name: connection.execute(select(func.count()).select_from(metadata.tables[name]))
            .scalar() for name in names}


@pytest.fixture
def old_app(tmp_path_factory):
    url = _database_url(tmp_path_factory)
    if url.startswith("postgresql"):
        pytest.skip("the SQLite batch-mode copy is what this guards; PostgreSQL alters in place")
    return create_app({"PORTAL_ENV": "testing", "TESTING": True,
                       "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
                       "SQLALCHEMY_DATABASE_URI": url})


def test_an_upgrade_keeps_every_row_of_a_database_in_use(old_app):
    with old_app.app_context():
        upgrade(revision=OLD)
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # rows filled in any order
            connection.commit()
            before = _fill_every_table(connection)
            connection.commit()
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")  # as every connection has it
            connection.commit()
        upgrade()
        with db.engine.connect() as connection:
            after = _counts(connection, before)
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.engine.dispose()
    assert version != OLD
    # Sessions are ended on purpose by the accounts migration (everyone logs in again).
    before.pop("user_session", None), after.pop("user_session", None)
    assert after == before
