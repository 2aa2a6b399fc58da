"""Fixtures: one app and schema per run (built by the migrations), rows cleared after each test.

TEST_DATABASE_URL chooses the database (PostgreSQL in CI's second pass); SQLite otherwise.
"""

from __future__ import annotations

import os

import pytest
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from models.audit import GENESIS
from portal import create_app
from portal.extensions import db, limiter
from portal.security import ctx  # noqa: F401  (imported so fixtures can monkeypatch it)
from portal.services.audit.guard import maintenance
from tests import factories

pytest_plugins = ["tests.browser"]  # live server and Chromium fixtures

REFERENCE_TABLES = {"product", "product_document", "product_rate", "alembic_version",
                    "audit_chain_head", "directory_stamp"}


class PortalClient(FlaskClient):
    """Each request runs in an app context of its own, as in production (fresh `g`, its own
    session). What the test body wrote is committed first, and the test body's objects are
    expired afterwards so they show what the request did."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Tests read English unless they ask for Chinese; a browser without a preference gets
        # Chinese (see test_auth's language tests).
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")

    def open(self, *args, **kwargs):
        db.session.commit()
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.expire_all()
        return response


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = create_app({
        "PORTAL_ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory),
        "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
        "PDF_CACHE_DIR": str(tmp_path_factory.mktemp("pdf-cache")),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    app.test_client_class = PortalClient
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _clear_rows() -> None:
    # DELETE rather than TRUNCATE: on PostgreSQL a TRUNCATE of every table costs far more than
    # deleting the handful of rows a test leaves.
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in REFERENCE_TABLES]
    # organization and user point at each other: cut that arrow before deleting.
    db.session.execute(text("UPDATE organization SET channel_manager_id = NULL"))
    # The audit trail is append-only (its triggers refuse DELETE): clearing it between tests is
    # the one maintenance job allowed to, and the chain starts again.
    with maintenance(db.session):
        for table in tables:
            db.session.execute(table.delete())
    db.session.execute(text("UPDATE audit_chain_head SET seq = 0, hash = :genesis"),
                       {"genesis": GENESIS})
    db.session.commit()


@pytest.fixture(autouse=True)
def _clean(app):
    with app.app_context():
        yield
        db.session.rollback()
        _clear_rows()
        db.session.remove()
    limiter.reset()


@pytest.fixture
def client(app):
    return app.test_client()


def login(client, user, password=factories.PASSWORD):
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def world(app):
    """Two partners (A and B, both covering housing mortgages) and one user of every role."""
    org_a = factories.OrgFactory(code="PARTNERA", name="Partner A")
    org_b = factories.OrgFactory(code="PARTNERB", name="Partner B", kind="property_broker")
    manager = factories.UserFactory.bank("channel_manager", email="manager@bank.test")
    org_a.channel_manager_id = manager.id
    users = {
        "partner_a": factories.UserFactory(org=org_a, role="partner_admin", email="admin@a.test"),
        "agent_a": factories.UserFactory(org=org_a, role="partner_agent", email="agent@a.test"),
        "partner_b": factories.UserFactory(org=org_b, role="partner_admin", email="admin@b.test"),
        "officer": factories.UserFactory.bank("credit_officer", email="officer@bank.test"),
        "manager": manager,
        "admin": factories.UserFactory.bank("admin", email="admin@bank.test"),
    }
    db.session.commit()

    class World:
        pass

    w = World()
    w.org_a, w.org_b = org_a, org_b
    w.users = users
    for key, user in users.items():
        setattr(w, key, user)
    return w


@pytest.fixture
def as_user(client):
    """Log the test client in as a user: as_user(world.officer)."""

    def _as(user):
        login(client, user)
        return client

    return _as
