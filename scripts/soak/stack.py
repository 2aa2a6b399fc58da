"""The soak's own servers, all on 127.0.0.1 and ports the OS found free: a PostgreSQL cluster
(Debian's pg_createcluster/pg_ctlcluster as root, else initdb/pg_ctl), redis-server, gunicorn
instances started with deploy/gunicorn.conf.py, the worker, and Debian's nginx in the foreground
with a configuration under the soak's temporary directory. Nothing here touches the PostgreSQL
on 5432 or the Redis on 6379; `Stack.close()` stops and removes everything it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def _kill_group(process: subprocess.Popen, sig=signal.SIGTERM, wait: float = 30) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Postgres:
    """A cluster of the soak's own. As root: pg_createcluster (owned by postgres, data and log
    under the soak's directory); otherwise initdb and pg_ctl as the current user."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.log = tmp / "postgresql.log"
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                          key=lambda p: int(p.parts[-3]))
        if not versions:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.version = versions[-1].parts[-3]
        self.bindir = versions[-1].parent
        self.name = f"soak{os.getpid()}"
        self.debian = os.geteuid() == 0 and shutil.which("pg_createcluster") is not None
        if self.debian:
            subprocess.run(["pg_createcluster", self.version, self.name, "-p", str(self.port),
                            "-d", str(tmp / "pgdata"), "-l", str(self.log), "--start-conf",
                            "manual", "-q", "--", "--auth-local=trust", "--auth-host=trust"],
                           check=True, stdout=subprocess.DEVNULL)
            conf_d = Path(f"/etc/postgresql/{self.version}/{self.name}/conf.d")
            conf_d.mkdir(parents=True, exist_ok=True)
            (conf_d / "soak.conf").write_text("listen_addresses = '127.0.0.1'\n")
        elif os.geteuid() == 0:
            raise RuntimeError("as root, the soak needs Debian's postgresql-common "
                               "(pg_createcluster)")
        else:
            subprocess.run([str(self.bindir / "initdb"), "-D", str(tmp / "pgdata"), "-U",
                            "postgres", "--auth=trust", "-E", "UTF8"], check=True,
                           stdout=subprocess.DEVNULL)
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/portal"
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", "portal"], check=True)

    def _ctl(self, action: str, *extra: str) -> None:
        if self.debian:
            command = ["pg_ctlcluster", self.version, self.name, action, *extra]
        else:
            command = [str(self.bindir / "pg_ctl"), "-D", str(self.tmp / "pgdata"), "-l",
                       str(self.log), "-w", "-o",
                       f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1",
                       action, *extra]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        # Fast: open connections are cut, as in a failover or a crash-restart.
        self._ctl("restart", "-m", "fast")

    def close(self) -> None:
        if self.debian:
            subprocess.run(["pg_dropcluster", self.version, self.name, "--stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(f"/etc/postgresql/{self.version}/{self.name}", ignore_errors=True)
        else:
            subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.tmp / "pgdata"), "-m",
                            "fast", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Redis:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL,
            start_new_session=True)
        from redis import Redis as Client

        wait_until(lambda: Client.from_url(self.url).ping(), "redis-server", 30)

    def close(self) -> None:
        _kill_group(self.process)


class Instance:
    """One app instance as portal@PORT.service runs it."""

    def __init__(self, env: dict, tmp: Path, name: str, workers: int, threads: int):
        self.port = free_port()
        self.name = name
        self.env = {**env, "PORTAL_BIND": f"127.0.0.1:{self.port}",
                    "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads),
                    "GUNICORN_ACCESS_LOG": "/dev/null", "GUNICORN_LOG_LEVEL": "warning"}
        self.log = tmp / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                 "wsgi:app"], cwd=ROOT, env=self.env, stdout=log, stderr=log,
                start_new_session=True)
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.port}/healthz",
                                     timeout=5).status_code == 200, f"{self.name}", 120)

    def kill(self) -> None:
        """kill -9 the master and its workers at once: a machine or container lost."""
        _kill_group(self.process, signal.SIGKILL)

    def close(self) -> None:
        if self.process is not None:
            _kill_group(self.process)


class Worker:
    def __init__(self, env: dict, tmp: Path):
        with open(tmp / "worker.log", "a") as log:
            self.process = subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "worker"],
                                            cwd=ROOT, env=env, stdout=log, stderr=log,
                                            start_new_session=True)

    def close(self) -> None:
        _kill_group(self.process, wait=60)


NGINX = """worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    log_format soak '$msec $status $upstream_addr $upstream_status $request_time "$request"';
    access_log {tmp}/nginx-access.log soak;
    # The upstream and proxy settings of deploy/nginx/portal.conf, over plain HTTP.
    upstream portal_app {{
{servers}
        keepalive 32;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 12m;
        location / {{
            proxy_pass http://portal_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_connect_timeout 2s;
            proxy_read_timeout 35s;
            proxy_send_timeout 35s;
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, tmp: Path, upstream_ports: list[int]):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = tmp / "nginx-access.log"
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                            for p in upstream_ports)
        config = tmp / "nginx.conf"
        config.write_text(NGINX.format(tmp=tmp, servers=servers, port=self.port))
        subprocess.run([binary, "-t", "-q", "-p", str(tmp), "-c", str(config)], check=True)
        self.process = subprocess.Popen([binary, "-p", str(tmp), "-c", str(config), "-g",
                                         "daemon off;"], start_new_session=True)
        wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200,
                   "nginx", 30)

    def close(self) -> None:
        _kill_group(self.process, signal.SIGQUIT)
