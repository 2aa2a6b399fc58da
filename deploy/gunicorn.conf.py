"""Gunicorn settings for one portal instance: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

One instance is one gunicorn master bound to one port (`portal@PORT.service` sets PORTAL_BIND);
nginx spreads requests over several instances, on this machine or others. Instances keep nothing
of their own: sessions, throttles, idempotency records and jobs live in PostgreSQL and Redis
(docs/deploy.md). These are the server's settings, not the portal's (those are read in
portal/config.py); the variables below only size and place the server.
"""

from __future__ import annotations

import multiprocessing
import os

# Where this instance listens. nginx on the same machine: 127.0.0.1:PORT; nginx elsewhere: the
# machine's private address (and a firewall that lets only nginx in).
bind = [os.environ.get("PORTAL_BIND", "127.0.0.1:8001")]

# The portal spends its time waiting on PostgreSQL, Argon2 and WeasyPrint: processes for the CPU
# work, a few threads each for the waiting. 2 × cores + 1 processes for the whole machine; with
# several instances on one machine, give each its share (GUNICORN_WORKERS).
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# A request that takes longer than this is killed with its worker (an agreement PDF renders in
# well under a second; an upload is checked in memory). Stopping lets requests in flight finish.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# nginx keeps idle connections to us for 60 s (`keepalive_timeout` in its upstream block); stay
# open longer than that, so nginx is always the side that closes an idle connection and never
# sends a request on one we have just closed.
keepalive = 75

# A worker is replaced after this many requests (with jitter, so they do not all restart at
# once): whatever a long-lived process accumulates is returned.
max_requests = 5000
max_requests_jitter = 500

# The heartbeat file on memory, not on a disk that may stall under a backup.
SHM = "/dev/shm"  # noqa: S108 — gunicorn's own recommendation; its files are private
worker_tmp_dir = SHM if os.path.isdir(SHM) else None

# The master builds the app before it opens its port, so the port opens only when the instance
# can answer: an instance (re)starting is refused by the kernel, and nginx moves on at once,
# instead of queueing requests at a port whose workers are still importing (the soak saw a
# client wait 10 s for that). Workers fork from the built app and start in an instant.
# A HUP then only renews workers with the same code; a release restarts the unit.
preload_app = True


def post_fork(server, worker):
    # Nothing connects while the app is built; should anything ever, its pooled connections must
    # not be shared by forked workers: each worker starts with an empty pool.
    from portal.extensions import db
    from wsgi import app

    with app.app_context():
        db.engine.dispose(close=False)

# Only nginx may tell us the scheme. The portal itself believes TRUSTED_PROXIES hops of
# X-Forwarded-For/-Proto/-Host (portal/config.py); this is gunicorn's own check of the same
# headers, so set it to nginx's address(es) too.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Access log to stdout (journald keeps it with the unit): the client's address as nginx saw it,
# the request, status, size, duration in seconds, and the instance's port to tell them apart.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = ('%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(L)ss '
                     f'instance={bind[0]} "%(a)s"')
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = f"portal@{bind[0]}"
