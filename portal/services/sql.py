"""Cheaper statements for the intake path (every API submission runs it).

There, building an SQLAlchemy statement costs more than running it, and the unit of work more
than the statements it emits: statements are built once (per dialect where they use the
database's own INSERT ... ON CONFLICT), and new rows can be inserted directly.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from sqlalchemy import column as sa_column
from sqlalchemy import insert, inspect
from sqlalchemy import table as sa_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.expression import TableClause

from ..extensions import db

T = TypeVar("T")


def per_dialect(build: Callable[[Callable], T]) -> Callable[[], T]:
    """Decorate `build(insert)`, which gets the dialect's `insert`; calling the result gives the
    statement for the session's database."""
    built: dict[str, T] = {}

    @wraps(build)
    def statement() -> T:
        name = db.session.get_bind().dialect.name
        if name not in built:
            built[name] = build(postgresql.insert if name == "postgresql" else sqlite.insert)
        return built[name]

    return statement


# Per mapped class, built on first use: the INSERT, and its columns with their attribute names.
_INSERTS: dict = {}


def add_inserted(*instances: T) -> list[T]:
    """Insert new ORM objects of one class with one INSERT ... RETURNING and put them in the
    session as though they had been loaded from the database, its defaults filled in.

    For the intake path, where the unit of work costs several times the statements it emits.
    Set only column attributes on the objects (collections afterwards, with
    `set_committed_value`); a refused insert raises at once, like any statement.
    """
    if not instances:
        return []
    mapper = inspect(type(instances[0]))
    if mapper not in _INSERTS:
        table = mapper.local_table
        # In the order of the objects given, whatever order the database returns rows in.
        _INSERTS[mapper] = (insert(table).returning(*table.c, sort_by_parameter_order=True),
                            [mapper.get_property_by_column(column).key for column in table.c],
                            list(table.c))
    statement, keys, columns = _INSERTS[mapper]
    rows = [{column.key: instance.__dict__[key] for column, key in zip(columns, keys, strict=True)
             if key in instance.__dict__} for instance in instances]
    result = db.session.execute(statement, rows if len(rows) > 1 else rows[0])
    for instance, row in zip(instances, result.all(), strict=True):
        # What was sent is already on the object; take the id and defaults from the database.
        for key, value in zip(keys, row, strict=True):
            if key not in instance.__dict__:
                setattr(instance, key, value)
        make_transient_to_detached(instance)
        db.session.add(instance)
    return list(instances)


def bulk_insert(table, rows: list[dict], *, ids: bool = False) -> list[int]:
    """Insert many new rows of one table; with `ids`, return their ids in the order given.

    For the bulk paths (history imports): on PostgreSQL through COPY, with the ids taken from
    the table's sequence first. An executemany ... RETURNING there is dominated by the driver
    parsing a new many-row statement per page, several times what the server spends. Elsewhere
    (SQLite) one executemany, with RETURNING when ids are wanted.
    """
    if not rows:
        return []
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        if ids:
            statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(connection.execute(statement, rows).scalars())
        connection.execute(insert(table), rows)
        return []
    given: list[int] = []
    if ids:
        given = list(connection.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(t)s, 'id')) FROM generate_series(1, %(n)s)",
            {"t": table.name, "n": len(rows)}).scalars())
        rows = [{**row, "id": row_id} for row, row_id in zip(rows, given, strict=True)]
    _copy(connection, table, rows)
    return given


def _copy(connection, table, rows: list[dict], *, into: str | None = None) -> None:
    """COPY `rows` into `table` (or the staging table `into`, quoted, of the rows' columns)."""
    # COPY knows nothing of the model's Python-side defaults (a stipulation's "missing"): they
    # are filled in here as an INSERT through SQLAlchemy would.
    defaults = {column.key: column.default.arg if column.default.is_scalar
                else column.default.arg(None)
                for column in table.c
                if into is None and column.key not in rows[0] and column.default is not None
                and (column.default.is_scalar or column.default.is_callable)}
    rows = [{**defaults, **row} for row in rows] if defaults else rows
    columns = [column for column in table.c if column.key in rows[0]]
    dialect = connection.dialect
    # What SQLAlchemy would do to each value on the way in (type decorators, enums).
    process = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    # Names from the table's metadata, quoted; the values travel apart, in COPY's own stream.
    names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
    cursor = connection.connection.driver_connection.cursor()
    target = into or dialect.identifier_preparer.quote(table.name)
    with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([p(row[c.key]) if p else row[c.key]
                            for c, p in zip(columns, process, strict=True)])


def staged(table, rows: list[dict], key: str, connection=None) -> TableClause | None:
    """On PostgreSQL, COPY `rows` (dicts of some of `table`'s columns, all with the same keys)
    into a temporary table shaped like those columns, emptied first and at commit; that table,
    for one set-based statement that reads it (`INSERT ... SELECT`, `UPDATE ... FROM`). None on
    another database: the caller runs its executemany as before.

    `key` names the use (one staging table each), so two uses in a transaction do not meet."""
    connection = connection if connection is not None else db.session.connection()
    if connection.dialect.name != "postgresql" or not rows:
        return None
    quote = connection.dialect.identifier_preparer.quote
    name = quote(f"stage_{table.name}_{key}")
    columns = [column for column in table.c if column.key in rows[0]]
    # Types from the table (not LIKE: no constraints, defaults or identity wanted here).
    spec = ", ".join(f"{quote(column.name)} {column.type.compile(connection.dialect)}"
                     for column in columns)
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({spec}) ON COMMIT DELETE ROWS")
    connection.exec_driver_sql(f"TRUNCATE {name}")
    _copy(connection, table, rows, into=name)
    return sa_table(f"stage_{table.name}_{key}", *(sa_column(c.name, c.type) for c in columns))
