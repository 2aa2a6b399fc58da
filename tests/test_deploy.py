"""The production recipe under deploy/ (docs/deploy.md), checked against the real parts: nginx
with the site configuration as shipped (TLS, redirect, static files, proxy headers) in front of
a gunicorn instance started with deploy/gunicorn.conf.py; the systemd units; the environment file
example; the upload limit nginx and the portal share."""

from __future__ import annotations

import hashlib
import re
import shutil
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from models import AuditEntry
from portal import config
from portal.extensions import db
from tests import factories
from tests.instances import Gunicorn, Nginx, free_port, nginx_main_config, nginx_site, portal_env

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_the_environment_file_example_names_every_setting():
    source = (ROOT / "portal" / "config.py").read_text()
    read = set(re.findall(r"""env(?:\.get\(|\[)["']([A-Z][A-Z0-9_]+)["']""", source))
    read |= set(re.findall(r"""_count\(["']([A-Z][A-Z0-9_]+)["']""", source))
    example = (DEPLOY / "portal.env.example").read_text()
    named = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert read and sorted(read - named) == []


def test_nginx_takes_the_largest_request_the_portal_takes(monkeypatch):
    site = (DEPLOY / "nginx" / "portal.conf").read_text()
    megabytes = int(re.search(r"client_max_body_size (\d+)m;", site).group(1))
    monkeypatch.delenv("UPLOAD_MAX_BYTES", raising=False)
    assert config.load({"PORTAL_ENV": "testing"})["MAX_CONTENT_LENGTH"] == megabytes * 2**20
    # A larger upload limit raises the portal's request limit with it (nginx's by hand).
    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(30 * 2**20))
    assert config.load({"PORTAL_ENV": "testing"})["MAX_CONTENT_LENGTH"] == 32 * 2**20


def test_static_urls_change_with_the_file(client, tmp_path, monkeypatch):
    css = (ROOT / "static" / "portal.css").read_bytes()
    page = client.get("/login").get_data(as_text=True)
    version = hashlib.sha256(css).hexdigest()[:12]
    assert f'href="/static/portal.css?v={version}"' in page
    assert client.get(f"/static/portal.css?v={version}").data == css


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_units_are_valid(tmp_path):
    for unit in (DEPLOY / "systemd").iterdir():
        shutil.copy(unit, tmp_path / unit.name)
    shutil.copy(tmp_path / "portal@.service", tmp_path / "portal@8001.service")
    names = [p.name for p in tmp_path.iterdir() if p.name != "portal@.service"]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    # The release's programs are not installed on this machine; anything else is a mistake.
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "is not executable: No such file" not in line]
    assert problems == []
    timer = (DEPLOY / "systemd" / "portal-backup.timer").read_text()
    calendar = re.search(r"OnCalendar=(.+)", timer).group(1)
    assert subprocess.run(["systemd-analyze", "calendar", calendar],
                          capture_output=True).returncode == 0


def _certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def behind_nginx(app, tmp_path):
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (make soak installs Debian's)")
    instance = Gunicorn(portal_env(app.config, TRUSTED_PROXIES=1, PORTAL_ENV="production"))
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = _certificate(prefix)
    trust = ssl.create_default_context(cafile=str(cert))
    http_port, https_port = free_port(), free_port()
    site = nginx_site([instance.port], http_port=http_port, https_port=https_port, cert=cert,
                      key=key, logs=prefix)
    try:
        server = Nginx(prefix, nginx_main_config(prefix, site),
                       f"https://localhost:{https_port}/healthz", verify=trust)
    except BaseException:
        instance.stop()
        raise
    # By name: the site answers for its server_name only (TLS needs the name, SNI, too).
    yield f"http://localhost:{http_port}", f"https://localhost:{https_port}", trust
    server.stop()
    instance.stop()


def test_nginx_site_redirects_serves_static_and_passes_the_client_on(world, behind_nginx):
    http_url, https_url, trust = behind_nginx
    plain = httpx.get(f"{http_url}/login?next=/partner/", follow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://localhost/login?next=/partner/"
    # Another name in Host is not served at all (no link or redirect is built from it).
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{http_url}/login", headers={"Host": "evil.example"})
    with pytest.raises(httpx.ConnectError):
        httpx.get(https_url.replace("localhost", "127.0.0.1") + "/login", verify=trust)

    client = httpx.Client(verify=trust, timeout=30, headers={"Accept-Language": "en"})
    login_page = client.get(f"{https_url}/login")
    assert login_page.status_code == 200
    # The portal saw https (X-Forwarded-Proto): secure cookies and HSTS.
    assert "Secure" in login_page.headers["set-cookie"]
    assert login_page.headers["Strict-Transport-Security"].startswith("max-age=31536000")

    # Static files come from nginx: versioned ones are kept a year, others checked each time.
    css_url = re.search(r'href="(/static/portal\.css\?v=[0-9a-f]+)"', login_page.text).group(1)
    css = client.get(f"{https_url}{css_url}")
    assert css.status_code == 200
    assert css.content == (ROOT / "static" / "portal.css").read_bytes()
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert css.headers["Server"].startswith("nginx") and "ETag" in css.headers
    assert client.get(f"{https_url}/static/portal.css").headers["Cache-Control"] == "no-cache"
    assert client.get(f"{https_url}/static/../wsgi.py").status_code in (400, 404)

    # A client claiming another address is not believed: nginx replaces X-Forwarded-For, and
    # the audit log records where the login really came from.
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
    answer = client.post(f"{https_url}/login",
                         headers={"X-Forwarded-For": "198.51.100.66",
                                  "Referer": f"{https_url}/login"},
                         data={"csrf_token": token, "email": world.officer.email,
                               "password": factories.PASSWORD}, follow_redirects=False)
    assert answer.status_code == 302
    db.session.expire_all()
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "login")).one()
    assert entry.ip == "127.0.0.1"


def test_retry_after_is_sent_only_when_it_means_come_back_then(client, world, tmp_path):
    from portal import create_app
    from portal.extensions import limiter
    from portal.services import Ctx, api_keys

    _row, key = api_keys.create(Ctx(user=None), world.partner_a, "retry", rate_limit="2 per hour")
    db.session.commit()
    auth = {"Authorization": f"Bearer {key}"}
    answered = client.get("/api/v1/referrals", headers=auth)
    assert answered.status_code == 200 and answered.headers["X-RateLimit-Remaining"] == "1"
    # An answer is not an invitation to wait: a client that honours Retry-After on every
    # response (or on a 5xx) would otherwise stay away until the hour's window ends.
    assert "Retry-After" not in answered.headers
    client.get("/api/v1/referrals", headers=auth)
    limited = client.get("/api/v1/referrals", headers=auth)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 60

    # A response that says when to come back itself keeps its own figure.
    other = create_app({"PORTAL_ENV": "testing", "SECRET_KEY": "t" * 40,
                        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/r.db"})

    @other.get("/busy")
    @limiter.limit("100 per hour")
    def busy():
        return {"status": "busy"}, 503, {"Retry-After": "3"}

    assert other.test_client().get("/busy").headers["Retry-After"] == "3"
