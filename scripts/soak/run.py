"""`make soak`: the production topology on this machine, under load, through a database restart
and the loss of an app instance; then nothing may be lost or duplicated (docs/deploy.md).

Everything on 127.0.0.1 and ports the OS found free, under one temporary directory: its own
PostgreSQL cluster, its own Redis, two gunicorn instances (deploy/gunicorn.conf.py) behind
nginx, and the worker. Partners, users and API keys are made with the portal's commands. Then
SOAK_PARTNERS partners' systems submit referrals and SOAK_OFFICERS officers' systems move them,
for SOAK_SECONDS (180) seconds; a third of the way in the database restarts, a little after half
way one instance is killed with SIGKILL (and started again SOAK_DOWN_SECONDS later). Exit status
1 when anything acknowledged is lost or duplicated, a timeline is broken or the audit chain is.
SOAK_KEEP=1 keeps the directory (logs, the clients' record) afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from check import check
from load import Officer, Partner, Record
from stack import BIN, ROOT, Instance, Nginx, Postgres, Redis, Worker

SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
PARTNERS = int(os.environ.get("SOAK_PARTNERS", "10"))
OFFICERS = int(os.environ.get("SOAK_OFFICERS", "2"))
DOWN_SECONDS = float(os.environ.get("SOAK_DOWN_SECONDS", "25"))
GRACE = 60.0  # clients keep retrying what is in flight this long after the load stops
PASSWORD = "soak-password-2026"


def say(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def flask(env: dict, *args: str) -> str:
    done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def make_accounts(env: dict) -> tuple[dict, list]:
    """Partners (organisation, API user, key) and officers (user, key), with the commands."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("accounts.py")),
                           str(PARTNERS), str(OFFICERS), PASSWORD], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"making the accounts failed:\n{done.stderr[-3000:]}")
    made = json.loads(done.stdout.strip().splitlines()[-1])
    return made["partners"], made["officers"]


def audit_verify(env: dict) -> str:
    """`flask --app wsgi audit verify` (issue 11, point 1) when this tree has it."""
    probe = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "audit", "verify", "--help"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    if probe.returncode:
        return "skipped"
    done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "audit", "verify"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    print((done.stdout + done.stderr).strip())
    return "ok" if done.returncode == 0 else "broken"


def drive(nginx: Nginx, pg: Postgres, victim: Instance, partners: dict, officers: list,
          record: Record) -> None:
    start = time.monotonic()
    record.started = start
    stop_at, give_up_at = start + SECONDS, start + SECONDS + GRACE
    clients = [Partner(f"partner {code}", nginx.url, key, record, stop_at, give_up_at,
                       org=code, think=(0.1, 0.5)) for code, key in partners.items()]
    clients += [Officer(f"officer {i + 1}", nginx.url, key, record, stop_at, give_up_at,
                        index=i, of=len(officers)) for i, key in enumerate(officers)]
    for client in clients:
        client.start()

    def at(fraction_or_seconds: float) -> None:
        time.sleep(max(0.0, start + fraction_or_seconds - time.monotonic()))

    at(SECONDS / 3)
    record.note("database restart begins (pg_ctlcluster restart -m fast)")
    began = time.monotonic()
    pg.restart()
    record.note(f"database accepting connections again ({time.monotonic() - began:.1f} s)")
    at(SECONDS * 0.55)
    victim.kill()
    record.note(f"{victim.name} killed with SIGKILL (master and workers)")
    at(SECONDS * 0.55 + DOWN_SECONDS)
    record.note(f"{victim.name} starting again")
    victim.start()
    record.note(f"{victim.name} answering /healthz")
    for client in clients:
        client.join(timeout=max(1.0, give_up_at + 30 - time.monotonic()))
    record.note("load finished")


def per_instance(nginx: Nginx, instances: list[Instance]) -> dict:
    names = {f"127.0.0.1:{i.port}": i.name for i in instances}
    counts: Counter = Counter()
    for line in nginx.access_log.read_text().splitlines():
        upstreams = line.split(" ", 3)[2]  # $msec $status $upstream_addr ...
        for upstream in upstreams.rstrip(",").split(","):
            counts[names.get(upstream.strip(), upstream.strip() or "none")] += 1
    return dict(counts)


def report(record: Record, results: dict, audit: str, spread: dict, worker_alive: bool) -> None:
    total = sum(record.requests.values())
    longest = max(record.outages, default=(0.0, "-", 0.0, 0.0))
    print()
    print(f"== make soak: {SECONDS:.0f} s of load, {PARTNERS} partners, {OFFICERS} officers, "
          "2 gunicorn instances behind nginx, PostgreSQL and Redis of its own ==")
    for offset, what in record.events:
        print(f"  +{offset:6.1f} s  {what}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(record.requests.items()))
    print(f"requests:            {total} ({kinds})")
    print(f"  per instance:      {spread}")
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(record.errors.items())) or "none"
    print(f"errors by status:    {errors}")
    print(f"referrals:           {results['referrals_acknowledged']} acknowledged (201), "
          f"{results['replayed_acknowledgements']} of them by a replay; "
          f"{results['referrals_stored']} stored, "
          f"{results['stored_without_acknowledgement']} without an acknowledgement; "
          f"{results['referrals_given_up']} given up, {results['referrals_refused']} refused")
    print(f"transitions:         {results['transitions_acknowledged']} acknowledged (200); "
          f"states now {results['states']}")
    print(f"lost:                {results['lost']}")
    print(f"duplicated:          {results['duplicated']}")
    print(f"broken timelines:    {results['broken_timelines']}")
    if audit == "skipped":
        print("audit chain:         NOT CHECKED — `flask --app wsgi audit verify` does not exist "
              "in this tree yet; the soak runs it as soon as it does")
    else:
        print(f"audit chain:         {audit} (flask --app wsgi audit verify)")
    alive = ("still running (it rode out the database restart)" if worker_alive
             else "NOT RUNNING at the end (see worker.log)")
    print(f"worker:              {alive}")
    print(f"longest outage seen by a client: {longest[0]:.1f} s ({longest[1]}, "
          f"+{longest[2]:.1f} s to +{longest[3]:.1f} s)")
    for example in ("lost_referrals", "lost_transitions", "duplicated_examples",
                    "broken_examples"):
        if results[example]:
            print(f"  {example}: {results[example]}")


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="portal-soak-"))
    tmp.chmod(0o755)  # PostgreSQL (as postgres) and nginx's workers write under it
    opened: list = []
    failed = True
    try:
        say(f"working under {tmp}")
        pg = Postgres(tmp)
        opened.append(pg)
        say(f"PostgreSQL {pg.version} cluster on 127.0.0.1:{pg.port}")
        redis = Redis(tmp)
        opened.append(redis)
        say(f"Redis on 127.0.0.1:{redis.port}")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PORTAL_", "GUNICORN_", "DATABASE_", "REDIS_"))}
        env.update({"PORTAL_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
                    "DATABASE_URL": pg.url, "REDIS_URL": redis.url, "TRUSTED_PROXIES": "1",
                    "UPLOAD_DIR": str(tmp / "uploads"), "PDF_CACHE_DIR": str(tmp / "pdf-cache"),
                    "API_RATE_LIMIT": "100000 per minute", "PYTHONPATH": str(ROOT),
                    # This nginx speaks plain HTTP on 127.0.0.1 (production's ends TLS:
                    # deploy/nginx/portal.conf), so nothing is to be redirected to HTTPS.
                    "FORCE_HTTPS": "0"})
        say("migrations (what portal-migrate.service runs once per release)")
        flask(env, "db", "upgrade")
        say("partners, officers and API keys (flask orgs/users/api-key create)")
        partners, officers = make_accounts(env)
        instances = [Instance(env, tmp, f"app{i}", workers=2, threads=4) for i in (1, 2)]
        opened.extend(instances)
        say(f"gunicorn instances on {', '.join(str(i.port) for i in instances)}")
        worker = Worker(env, tmp)
        opened.append(worker)
        nginx = Nginx(tmp, [i.port for i in instances])
        opened.append(nginx)
        say(f"nginx on {nginx.url}; load for {SECONDS:.0f} s")
        record = Record()
        driver = threading.Thread(target=drive, args=(nginx, pg, instances[0], partners,
                                                      officers, record))
        driver.start()
        driver.join()
        say("checking what the clients were told against the database")
        results = check(pg.url.replace("postgresql+psycopg", "postgresql"),
                        record.submissions, record.transitions)
        audit = audit_verify(env)
        worker_alive = worker.process.poll() is None
        report(record, results, audit, per_instance(nginx, instances), worker_alive)
        (tmp / "record.json").write_text(json.dumps(
            {"submissions": record.submissions, "transitions": record.transitions,
             "outages": record.outages, "events": record.events, "attempts": record.attempts,
             "results": results},
            default=str))
        failed = bool(results["lost"] or results["duplicated"] or results["broken_timelines"]
                      or audit == "broken" or not results["referrals_acknowledged"]
                      or not worker_alive)
        return 1 if failed else 0
    finally:
        for thing in reversed(opened):
            try:
                thing.close()
            except Exception as exc:  # noqa: BLE001 — close the rest regardless
                say(f"closing {type(thing).__name__}: {exc}")
        if os.environ.get("SOAK_KEEP") == "1" or failed:
            say(f"kept {tmp} (logs, record.json)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
