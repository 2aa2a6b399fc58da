"""Outages answered honestly: with the database unreachable every page and API call is a 503
with Retry-After (a page people can read, the JSON error for the API), and the same app
answers again once the database is back. Malformed input is a 4xx, never a 500.

Each outage test runs its own app on its own database, so the suite's database never goes
away: on SQLite a file whose directory is moved aside, on PostgreSQL a cluster of the test's
own on a spare port (never the server on 5432).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from tests import factories
from tests.conftest import PortalClient, login
from tests.integration_helpers import auth, make_key

PAGE = "/partner/referrals"
API = "/api/v1/referrals"


def _app_on(url: str, tmp_path: Path):
    app = create_app({
        "PORTAL_ENV": "testing", "TESTING": True,
        "SECRET_KEY": "outage-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path / "uploads"),
        "PDF_CACHE_DIR": str(tmp_path / "pdf"), "WTF_CSRF_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    app.test_client_class = PortalClient
    return app


def _partner_and_key(app):
    """A partner user (logged in on a client) and an API key of theirs, on `app`'s database."""
    with app.app_context():
        upgrade()
        user = factories.UserFactory(org=factories.OrgFactory(code="OUTAGE"),
                                     role="partner_admin", email="outage@a.test")
        db.session.commit()
        key = make_key(user)
        client = app.test_client()
        login(client, user)
        # The test client commits the current session around each request: keep its own.
        return client, key


def _assert_unavailable(client, key):
    page = client.get(PAGE)
    assert page.status_code == 503
    assert int(page.headers["Retry-After"]) > 0
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert "temporarily unavailable" in html and "Log out" not in html
    zh = client.get(PAGE, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 503 and "暂时无法使用" in zh.get_data(as_text=True)
    api = client.get(API, headers=auth(key))
    assert api.status_code == 503 and int(api.headers["Retry-After"]) > 0
    assert api.get_json()["error"]["code"] == "unavailable"
    posted = client.post(API, json={"product": "auto_loan"}, headers=auth(key))
    assert posted.status_code == 503


def _assert_answering(client, key):
    assert client.get(PAGE).status_code == 200
    assert client.get(API, headers=auth(key)).status_code == 200


def test_sqlite_file_that_cannot_be_opened_is_503_and_recovers(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    app = _app_on(f"sqlite:///{folder / 'portal.db'}", tmp_path)
    client, key = _partner_and_key(app)
    _assert_answering(client, key)
    # The directory goes away: open connections still hold the file, so drop them as a
    # restart of the database would; a new connection must fail, not create an empty file.
    folder.rename(tmp_path / "moved")
    with app.app_context():
        db.engine.dispose()
    _assert_unavailable(client, key)
    assert not folder.exists()
    (tmp_path / "moved").rename(folder)
    _assert_answering(client, key)  # the same app, no restart


# --- PostgreSQL: a cluster of the test's own ---------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl as the postgres user, in a temporary directory, on a free port."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="portal-outage-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = _free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")

    def _run(self, *args):
        as_postgres = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_postgres, str(self.bin / args[0]), *args[1:]], check=True,
                       capture_output=True, timeout=120)

    def start(self):
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.dir / "log"), "-w", "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postgresql_stopped_is_503_and_the_same_app_recovers(tmp_path):
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries are not installed")
    cluster = Cluster(bin_dir)
    try:
        cluster.start()
        app = _app_on(cluster.url, tmp_path)
        client, key = _partner_and_key(app)
        _assert_answering(client, key)
        cluster.stop()  # the pool still holds the connections the requests used
        _assert_unavailable(client, key)
        cluster.start()
        _assert_answering(client, key)
        cluster.stop("immediate")  # a crash this time, then back again
        _assert_unavailable(client, key)
        cluster.start()
        _assert_answering(client, key)
        with app.app_context():
            db.engine.dispose()
    finally:
        cluster.remove()


# --- malformed input ---------------------------------------------------------------------------

def test_a_deeply_nested_json_body_is_refused_not_a_500(client, world):
    key = make_key(world.partner_a)
    for body in (b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        response = client.post(API, data=body, content_type="application/json",
                               headers=auth(key, **{"Idempotency-Key": "deep-1"}))
        assert response.status_code == 422
        assert "nested more than" in response.get_json()["error"]["fields"]["body"]
    # Brackets inside a string are text, not nesting: such a body reaches the schema.
    text = client.post(API, json={"product": "[" * 5000}, headers=auth(key))
    assert text.status_code == 422 and "body" not in text.get_json()["error"]["fields"]


def test_an_oversized_json_body_is_413(client, world):
    key = make_key(world.partner_a)
    response = client.post(API, data=b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                           content_type="application/json", headers=auth(key))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_get_json_anywhere_refuses_deep_nesting(app):
    with app.test_request_context("/", method="POST", data=b"[" * 100_000,
                                  content_type="application/json"):
        from flask import request
        from werkzeug.exceptions import BadRequest

        with pytest.raises(BadRequest):
            request.get_json()


@pytest.mark.parametrize("target", ["/partner/referrals\r\nSet-Cookie: x=1",
                                    "/partner\nLocation: https://evil.test/",
                                    "/bank/queue\x00", "/x\x7f"])
def test_control_characters_in_a_redirect_target_are_ignored(client, world, target):
    # After logging in: the login form's next=
    response = client.post("/login", query_string={"next": target},
                           data={"email": world.partner_a.email,
                                 "password": factories.PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/partner/"
    assert "Set-Cookie: x" not in str(response.headers)
    # The language switch's next=
    switched = client.post("/language/en", data={"next": target})
    assert switched.status_code == 302 and switched.headers["Location"] == "/"
