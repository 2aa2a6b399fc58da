"""The restore drill (issue 11): data -> backup -> a fresh database -> restore -> every table's
row count, every document's bytes and the audit chain as they were. On PostgreSQL the fresh
database is created and dropped here (only when TEST_DATABASE_URL is PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, table, text

from models import AuditEntry, Document, Referral, User
from portal import create_app
from portal.extensions import db
from portal.services import Ctx, documents, referrals
from portal.services.audit import chain
from tests import factories
from tests.conftest import PortalClient
from tests.integration_helpers import pdf_bytes, png_bytes


def _counts() -> dict[str, int]:
    names = inspect(db.engine).get_table_names()
    return {n: db.session.scalar(select(func.count()).select_from(table(n))) for n in names}


@pytest.fixture
def fresh_database(app, tmp_path):
    """The URL of a new, empty database of the suite's kind, removed afterwards."""
    if db.engine.dialect.name != "postgresql":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"{db.engine.url.database}_restore"
    admin = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield db.engine.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _invoke(other, *args):
    # Flask's CLI runs in the current app context when there is one (the suite's): give it the
    # other app's.
    with other.app_context():
        result = other.test_cli_runner().invoke(args=list(args))
        db.session.remove()
        return result


def _other_app(url: str, tmp_path: Path):
    other = create_app({
        "PORTAL_ENV": "testing", "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path / "restored-uploads"),
        "PDF_CACHE_DIR": str(tmp_path / "restored-pdf-cache"), "RATELIMIT_STORAGE_URI": "memory://",
    })
    other.test_client_class = PortalClient
    return other


def _data(world, app) -> None:
    officer = Ctx(user=world.officer, ip="10.0.0.2")
    for i in range(3):
        referral = factories.submit(world.partner_a)
        documents.upload(Ctx(user=world.partner_a), referral, "id_card", f"id-{i}.pdf",
                         pdf_bytes(f"ID {i}"))
        documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "pay.png",
                         png_bytes())
        referrals.transition(officer, referral, "under_review")
        referrals.reveal(officer, referral, "identity_verification")
    cached = Path(app.config["PDF_CACHE_DIR"]) / "ab" / "abc123.pdf"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"%PDF-1.7 a cached agreement")
    db.session.commit()


def test_backup_then_restore_into_a_fresh_database_gives_back_everything(
        app, world, tmp_path, fresh_database):
    _data(world, app)
    before = _counts()
    assert before["document"] == 6 and before["audit_entry"] > 10
    archive = tmp_path / "portal-backup.tar.gz"
    result = app.test_cli_runner().invoke(args=["backup", str(archive)])
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["tables"] == before
    assert manifest["audit_head"] == dict(zip(("seq", "hash"), chain.head(), strict=True))
    # Every file under UPLOAD_DIR (earlier tests' too: the suite shares the directory).
    assert len(manifest["uploads"]) >= 6
    assert {"name": "ab/abc123.pdf", "sha256": hashlib.sha256(
        b"%PDF-1.7 a cached agreement").hexdigest()} in manifest["pdf_cache"]
    originals = {d.storage_key: d.sha256 for d in db.session.scalars(select(Document))}
    assert {(u["path"], u["sha256"]) for u in manifest["uploads"]} >= set(originals.items())
    # Nothing of this session is touched under the other app: it would reach the other database.
    officer_id = world.officer.id
    db.session.commit()

    other = _other_app(fresh_database, tmp_path)
    result = _invoke(other, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
    with other.app_context():
        assert _counts() == before
        uploads = Path(other.config["UPLOAD_DIR"])
        restored = {d.storage_key: d.sha256 for d in db.session.scalars(select(Document))}
        assert restored == originals
        for key, digest in restored.items():
            assert hashlib.sha256((uploads / key).read_bytes()).hexdigest() == digest
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "referral.reveal")) == 3
        db.session.remove()
    verify = _invoke(other, "audit", "verify")
    assert verify.exit_code == 0, verify.output
    # The restored portal goes on writing on the same chain.
    with other.app_context():
        referrals.reveal(Ctx(user=db.session.get(User, officer_id)),
                         db.session.scalar(select(Referral).limit(1)), "identity_verification")
        db.session.commit()
        assert chain.walk().ok
        db.session.remove()
    # A second restore into what is now a full database is refused, and says why.
    again = _invoke(other, "restore", str(archive))
    assert again.exit_code == 1 and "is not empty" in again.output
    with other.app_context():
        db.engine.dispose()


def test_restore_refuses_a_non_empty_upload_directory(app, world, tmp_path, fresh_database):
    archive = tmp_path / "b.tar.gz"
    assert app.test_cli_runner().invoke(args=["backup", str(archive)]).exit_code == 0
    other = _other_app(fresh_database, tmp_path)
    (tmp_path / "restored-uploads").mkdir()
    (tmp_path / "restored-uploads" / "left-over.pdf").write_bytes(b"x")
    result = _invoke(other, "restore", str(archive))
    assert result.exit_code == 1 and "upload directory" in result.output
    with other.app_context():
        assert inspect(db.engine).get_table_names() == []  # nothing was written
        db.engine.dispose()
