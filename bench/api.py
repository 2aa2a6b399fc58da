"""API throughput: referral submissions per second through POST /api/v1/referrals, side by side
with a bare route (GET /healthz) on the same gunicorn server with 2 workers.

Self-contained: a temporary SQLite database built by the migrations (and, when
BENCH_POSTGRES_URL is set, that PostgreSQL database, its schema rebuilt), one partner with an
agreement in force and an API key; gunicorn on 127.0.0.1 (a free port); client threads with
http.client, a new connection per request (gunicorn's sync workers close it after each answer).
Every submission is a distinct, valid buyer with its own Idempotency-Key. Each measurement is
bounded in time and in number of requests. The figure is the ratio submissions / bare requests
(target above 0.3). For scale, a third measurement on the same server (bench/api_wsgi.py adds the
route) posts to a route that only inserts one row and commits.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.3
SECONDS = 5.0          # per measurement
MAX_REQUESTS = 5000    # per measurement
THREADS = 6
WARMUP = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _national_ids(count: int) -> list[str]:
    """Distinct valid 18-character IDs (birth dates from 1970 on, three-digit sequence)."""
    from stdnum.cn import ric

    out = []
    born = date(1970, 1, 1)
    while len(out) < count:
        for seq in range(0, 1000, 7):
            body = f"310115{born:%Y%m%d}{seq:03d}"
            out.append(body + ric.calc_check_digit(body + "0"))
            if len(out) == count:
                break
        born += timedelta(days=1)
    return out


def _body(national_id: str, n: int) -> bytes:
    return json.dumps({
        "product": "housing_mortgage",
        "buyer": {"name": "张伟", "national_id": national_id, "mobile": f"139{n % 10**8:08d}",
                  "employer": "市第一中学", "industry": "education_science_culture_health",
                  "monthly_income": 25000},
        "amount": 700000, "term_months": 240,
        "asset": {"description": "旭日花园 3-1201", "price": 1200000, "down_payment": 400000},
        "consent": {"obtained": True, "notice_version": "2026-01",
                    "obtained_at": "2026-01-05T10:00:00+08:00"},
        "external_ref": f"BENCH-{n}",
    }, ensure_ascii=False).encode()


def _prepare(env: dict) -> str:
    """Migrate the database and make a partner with an agreement and an API key (in a child
    process, so this one never opens the database the server writes to)."""
    script = """
import sys
from datetime import timedelta
from flask_migrate import upgrade
from sqlalchemy import text
from portal import create_app
from portal.extensions import db
from portal.services import Ctx, accounts, agreements, api_keys
from models import Agreement, utcnow
app = create_app()
with app.app_context():
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade()
    system = Ctx(user=None, ip="bench")
    org = accounts.create_org(system, code="BENCH", name="Bench Homes",
                              kind="real_estate_developer")
    user, _ = accounts.create_user(system, email="api@bench.example", role="partner_admin",
                                   org=org, name="Bench API", password="bench-password-2026")
    agreements.ensure_default_templates()
    template = agreements.default_template_for(org)
    today = agreements.local_today()
    db.session.add(Agreement(org=org, number="AGR-BENCH-1", version=1, template=template,
                             template_version=template.version, products=["housing_mortgage"],
                             projects=[], brands=[], effective_from=today - timedelta(days=1),
                             expires_on=today + timedelta(days=300), status="active",
                             activated_at=utcnow()))
    _, key = api_keys.create(system, user, "bench")
    db.session.commit()
    sys.stdout.write(key)
"""
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def _wait_up(port: int, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz in time")


def _load(port: int, make_request, *, seconds: float = SECONDS, limit: int = MAX_REQUESTS,
          threads: int = THREADS) -> dict:
    """Run requests from `threads` threads until `seconds` pass or `limit` are sent."""
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "statuses": {}, "errors": 0}
    stop_at = time.monotonic() + seconds

    def worker():
        while time.monotonic() < stop_at:
            with lock:
                n = state["next"]
                if n >= limit:
                    return
                state["next"] += 1
            method, path, body, headers, expected = make_request(n)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                status = response.status
            except OSError:
                with lock:
                    state["errors"] += 1
                continue
            with lock:
                state["statuses"][status] = state["statuses"].get(status, 0) + 1
                if status == expected:
                    state["ok"] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    return {"ok": state["ok"], "seconds": round(elapsed, 2),
            "per_second": round(state["ok"] / elapsed, 1),
            "statuses": {str(k): v for k, v in sorted(state["statuses"].items())},
            "connection_errors": state["errors"]}


def run(n: int = 10) -> dict:
    """`n` is accepted for the dispatcher; each measurement is fixed at SECONDS / MAX_REQUESTS.
    SQLite always; PostgreSQL too when BENCH_POSTGRES_URL names a database (its schema is
    dropped and rebuilt)."""
    runs = [measure("sqlite", None)]
    if os.environ.get("BENCH_POSTGRES_URL"):
        runs.append(measure("postgresql", os.environ["BENCH_POSTGRES_URL"]))
    return {"target_ratio": TARGET_RATIO, "runs": runs}


def measure(database: str, url: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        env = {**os.environ,
               "PORTAL_ENV": "production",
               "SECRET_KEY": secrets.token_hex(32),
               "DATABASE_URL": url or f"sqlite:///{root / 'bench.db'}",
               "UPLOAD_DIR": str(root / "uploads"),
               "API_RATE_LIMIT": "1000000 per minute",
               # Plain HTTP on 127.0.0.1, no TLS proxy in front: production would redirect it.
               "FORCE_HTTPS": "0",
               "PYTHONPATH": str(ROOT)}
        env.pop("REDIS_URL", None)
        key = _prepare(env)
        port = _free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        # BENCH_WORKERS and BENCH_GUNICORN_CONFIG (a gunicorn -c file) are for experiments.
        workers = os.environ.get("BENCH_WORKERS", "2")
        options = ["--workers", workers, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        if os.environ.get("BENCH_GUNICORN_CONFIG"):
            options += ["-c", os.environ["BENCH_GUNICORN_CONFIG"]]
        log = open(root / "gunicorn.log", "w")  # noqa: SIM115 — closed below
        server = subprocess.Popen([str(gunicorn), *options, "bench.api_wsgi:app"], env=env,
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                _wait_up(port, server)
            except RuntimeError:
                log.flush()
                print((root / "gunicorn.log").read_text()[-3000:], file=sys.stderr)
                raise
            ids = _national_ids(MAX_REQUESTS + WARMUP)
            auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

            def bare(_n):
                return "GET", "/healthz", None, {}, 200

            def submit(i, offset=0):
                n = i + offset
                headers = {**auth, "Idempotency-Key": f"bench-{n}"}
                return "POST", "/api/v1/referrals", _body(ids[n], n), headers, 201

            _load(port, bare, seconds=1, limit=WARMUP, threads=2)
            _load(port, lambda i: submit(i, MAX_REQUESTS), seconds=2,
                  limit=WARMUP, threads=2)
            def one_insert(_n):
                return "POST", "/bench/one-insert", b"{}", {"Content-Type": "application/json"}, 201

            bare_result = _load(port, bare)
            submit_result = _load(port, submit)
            insert_result = _load(port, one_insert)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    ratio = (submit_result["per_second"] / bare_result["per_second"]
             if bare_result["per_second"] else 0.0)
    sync = " (WAL, synchronous=FULL)" if database == "sqlite" else ""
    result = {
        "database": database,
        "server": f"gunicorn, {workers} sync workers, {database}{sync}",
        "client_threads": THREADS,
        "bare_route": {"path": "GET /healthz", **bare_result},
        "submissions": {"path": "POST /api/v1/referrals (Idempotency-Key)", **submit_result},
        "ratio": round(ratio, 3),
        # For scale: a write route that inserts one row and commits, on the same server.
        "one_insert_route": {"path": "POST /bench/one-insert", **insert_result,
                             "ratio": round(insert_result["per_second"]
                                            / max(bare_result["per_second"], 0.1), 3)},
        "meets_target": ratio > TARGET_RATIO,
    }
    print(f"  -- {result['server']}")
    print(f"  bare route GET /healthz:        {bare_result['per_second']:8.1f} req/s "
          f"({bare_result['ok']} in {bare_result['seconds']} s)")
    print(f"  referral submissions (API):     {submit_result['per_second']:8.1f} req/s "
          f"({submit_result['ok']} in {submit_result['seconds']} s, statuses "
          f"{submit_result['statuses']})")
    print(f"  ratio submissions / bare:       {ratio:8.3f}  (target > {TARGET_RATIO})")
    print(f"  for scale, one INSERT + commit: {insert_result['per_second']:8.1f} req/s "
          f"(ratio {result['one_insert_route']['ratio']:.3f})")
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
