"""Backups and restores: the database, the uploaded documents and a manifest in one archive.

The archive (tar, gzip) holds `database.sqlite3` (SQLite's online backup API: a consistent copy
while the portal runs) or `database.pgdump` (`pg_dump -Fc` on an exported snapshot, so the row
counts in the manifest are of the same moment), `uploads/...` (every file under UPLOAD_DIR), and
`manifest.json`: each table's row count, each file's SHA-256, the audit chain's head, and the
agreement PDF cache as names and hashes only (the PDFs render again identically).

A restore goes into an empty database and an empty upload directory only, and checks what it
restored against the manifest. docs/operations.md has the procedure.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import shutil
import sqlite3
import subprocess  # nosec B404  # pg_dump and pg_restore, with argument lists, no shell
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from flask import current_app
from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.engine import URL, Connection

from models import utcnow

from ..extensions import db
from .audit import chain

FORMAT = 1
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path, pattern: str = "*") -> Iterator[tuple[str, Path]]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob(pattern)):
        if path.is_file() and not path.name.startswith("."):
            yield path.relative_to(root).as_posix(), path


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: PG_BIN_DIR, else PATH, else the newest Debian install."""
    configured = current_app.config.get("PG_BIN_DIR")
    if configured:
        return str(Path(configured) / name)
    found = shutil.which(name)
    if found:
        return found
    installed = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                       key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not installed:
        raise BackupError(f"{name} was not found: apt-get install postgresql-client "
                          "(or set PG_BIN_DIR)")
    return installed[-1]


def _libpq(url, workdir: Path) -> str:
    """A libpq URL for pg_dump/pg_restore. A password goes in a private password file named by
    the URL (`passfile`), never on the command line where `ps` shows it."""
    plain = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                       database=url.database)
    if not url.password:
        return plain.render_as_string(hide_password=False)
    passfile = workdir / "pgpass"
    passfile.touch(mode=0o600)
    fields = [url.host or "*", str(url.port or "*"), url.database or "*", url.username or "*",
              str(url.password)]
    passfile.write_text(":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields)
                        + "\n")
    return plain.update_query_dict({"passfile": str(passfile)}).render_as_string(
        hide_password=False)


def _table_counts(conn: Connection) -> dict[str, int]:
    names = sorted(inspect(conn).get_table_names())
    return {name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
            for name in names}


def _head(conn: Connection) -> dict:
    row = conn.execute(text("SELECT seq, hash FROM audit_chain_head WHERE id = 1")).first()
    return {"seq": row.seq, "hash": row.hash} if row else {"seq": 0, "hash": chain.GENESIS}


def _revision(counts: dict, conn: Connection) -> str | None:
    if "alembic_version" not in counts:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


# --- backup ------------------------------------------------------------------------------------

def _dump_sqlite(workdir: Path) -> tuple[Path, dict]:
    source = db.engine.url.database
    target = workdir / "database.sqlite3"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)  # the online backup API: consistent, while writers carry on
    copy = create_engine(f"sqlite:///{target}")  # counted from the copy: the same moment
    try:
        with copy.connect() as conn:
            counts = _table_counts(conn)
            info = {"tables": counts, "alembic_revision": _revision(counts, conn),
                    "audit_head": _head(conn)}
    finally:
        copy.dispose()
    return target, info


def _dump_postgresql(workdir: Path) -> tuple[Path, dict]:
    target = workdir / "database.pgdump"
    url = _libpq(db.engine.url, workdir)
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        # pg_dump reads the snapshot this transaction exported: the counts are of its moment.
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        counts = _table_counts(conn)
        info = {"tables": counts, "alembic_revision": _revision(counts, conn),
                "audit_head": _head(conn)}
        done = subprocess.run(  # noqa: S603  # nosec B603  # our tool and our database's URL, no shell
            [pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}",
             f"--file={target}", f"--dbname={url}"],
            capture_output=True, text=True, check=False)
        conn.rollback()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return target, info


def create(path: str | Path) -> dict:
    """Write a backup archive to `path`; returns its manifest."""
    path = Path(path)
    dialect = db.engine.dialect.name
    uploads = Path(current_app.config["UPLOAD_DIR"])
    pdf_cache = Path(current_app.config["PDF_CACHE_DIR"])
    with tempfile.TemporaryDirectory(prefix="portal-backup-") as tmp:
        dump, info = (_dump_postgresql if dialect == "postgresql" else _dump_sqlite)(Path(tmp))
        manifest = {
            "format": FORMAT, "created_at": utcnow().isoformat(), "dialect": dialect,
            "database": {"file": dump.name, "sha256": _sha256(dump),
                         "alembic_revision": info["alembic_revision"]},
            "tables": info["tables"], "audit_head": info["audit_head"],
            "uploads": [], "pdf_cache": [],
        }
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(dump, arcname=dump.name)
            for name, file in _files(uploads):
                digest = _sha256(file)
                archive.add(file, arcname=f"uploads/{name}")
                manifest["uploads"].append({"path": name, "size": file.stat().st_size,
                                            "sha256": digest})
            for name, file in _files(pdf_cache, "*.pdf"):
                manifest["pdf_cache"].append({"name": name, "sha256": _sha256(file)})
            data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
            member = tarfile.TarInfo(MANIFEST)
            member.size, member.mtime = len(data), int(utcnow().timestamp())
            archive.addfile(member, io.BytesIO(data))
        partial.replace(path)  # never a half-written archive under the real name
    return manifest


# --- restore -----------------------------------------------------------------------------------

@dataclass
class RestoreReport:
    manifest: dict
    tables: dict = field(default_factory=dict)
    mismatched_tables: dict = field(default_factory=dict)
    files: int = 0
    mismatched_files: list = field(default_factory=list)
    audit: chain.Verdict | None = None

    @property
    def ok(self) -> bool:
        return (not self.mismatched_tables and not self.mismatched_files
                and self.audit is not None and self.audit.ok)


def _read_manifest(archive: tarfile.TarFile) -> dict:
    try:
        manifest = json.load(archive.extractfile(MANIFEST))
    except (KeyError, ValueError) as exc:
        raise BackupError(f"This is not a portal backup (no readable {MANIFEST}: {exc}).") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Unknown backup format {manifest.get('format')!r}.")
    return manifest


def _refuse_unless_empty(uploads: Path) -> None:
    with db.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
    if tables:
        raise BackupError(
            f"The database {db.engine.url.render_as_string(hide_password=True)} is not empty "
            f"({len(tables)} tables, e.g. {', '.join(sorted(tables)[:3])}). Restore only into "
            "an empty database: create a new one and point DATABASE_URL at it.")
    if uploads.is_dir() and any(uploads.iterdir()):
        raise BackupError(f"The upload directory {uploads} is not empty. Restore only into an "
                          "empty one: point UPLOAD_DIR at a new directory.")


def _member_path(name: str) -> PurePosixPath:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise BackupError(f"Refusing an archive member outside its directory: {name}")
    return relative


def _restore_database(archive: tarfile.TarFile, manifest: dict, workdir: Path) -> None:
    member = manifest["database"]["file"]
    archive.extract(archive.getmember(member), workdir, filter="data")
    dump = workdir / member
    if _sha256(dump) != manifest["database"]["sha256"]:
        raise BackupError("The database copy in the archive does not match its manifest hash.")
    db.engine.dispose()  # no pooled connection keeps the old (empty) file or database open
    if manifest["dialect"] == "sqlite":
        with sqlite3.connect(dump) as src, sqlite3.connect(db.engine.url.database) as dst:
            src.backup(dst)
        return
    url = _libpq(db.engine.url, workdir)
    command = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
               f"--dbname={url}", str(dump)]
    done = subprocess.run(command, capture_output=True, text=True,  # noqa: S603  # nosec B603  # ours
                          check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")


def restore(path: str | Path) -> RestoreReport:
    """Restore an archive into the (empty) configured database and upload directory, then check
    every table's row count, every file's hash and the audit chain against the manifest."""
    uploads = Path(current_app.config["UPLOAD_DIR"])
    with tarfile.open(path, "r:gz") as archive, \
            tempfile.TemporaryDirectory(prefix="portal-restore-") as tmp:
        manifest = _read_manifest(archive)
        if manifest["dialect"] != db.engine.dialect.name:
            raise BackupError(f"This backup is of a {manifest['dialect']} database; "
                              f"DATABASE_URL names a {db.engine.dialect.name} one.")
        _refuse_unless_empty(uploads)
        _restore_database(archive, manifest, Path(tmp))
        report = RestoreReport(manifest)
        for item in manifest["uploads"]:
            relative = _member_path(item["path"])
            target = uploads.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(f"uploads/{relative}") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            report.files += 1
            if _sha256(target) != item["sha256"]:
                report.mismatched_files.append(item["path"])
    with db.engine.connect() as conn:
        report.tables = _table_counts(conn)
    report.mismatched_tables = {
        name: (count, report.tables.get(name)) for name, count in manifest["tables"].items()
        if report.tables.get(name) != count}
    report.audit = chain.walk()
    return report
