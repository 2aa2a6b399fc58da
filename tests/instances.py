"""Real servers for the topology tests: redis-server, gunicorn instances started with
deploy/gunicorn.conf.py, `flask --app wsgi worker`, and nginx with the site configuration from
deploy/nginx/portal.conf. Each binds 127.0.0.1 on a port the OS found free, and is stopped by
the fixture that started it."""

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

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout: float = 60.0, process=None) -> None:
    """Poll `check` until it is true; fail naming `what` (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process ended with {process.returncode}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Redis:
    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
        from redis import Redis as Client
        from redis.exceptions import ConnectionError as NotYet

        def answers() -> bool:
            try:
                return Client.from_url(self.url).ping()
            except NotYet:  # not listening yet (a busy machine starts it slowly)
                return False

        wait_until(answers, "redis-server", 30, self.process)

    def stop(self) -> None:
        stop(self.process)


def portal_env(app_config: dict, **extra) -> dict:
    """The environment of a process that serves the same portal as the test's app."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PORTAL_", "GUNICORN_", "REDIS_", "DATABASE_"))}
    env.update({
        "PORTAL_ENV": "testing",
        "SECRET_KEY": app_config["SECRET_KEY"],
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "UPLOAD_DIR": app_config["UPLOAD_DIR"],
        "PDF_CACHE_DIR": app_config["PDF_CACHE_DIR"],
        "PYTHONPATH": str(ROOT),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Gunicorn:
    """One app instance as portal@PORT.service runs it: gunicorn -c deploy/gunicorn.conf.py."""

    def __init__(self, env: dict, workers: int = 1, threads: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "PORTAL_BIND": f"127.0.0.1:{self.port}",
                    "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads),
                    "GUNICORN_LOG_LEVEL": "warning", "GUNICORN_ACCESS_LOG": "/dev/null"}
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200,
                   f"gunicorn on {self.port}", 90, self.process)

    def stop(self) -> None:
        stop(self.process)


class Worker:
    def __init__(self, env: dict):
        self.process = subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "worker"],
                                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        start_new_session=True)

    def stop(self) -> None:
        stop(self.process)


def nginx_site(upstreams: list[int], *, http_port: int, https_port: int, cert: Path,
               key: Path, logs: Path) -> str:
    """deploy/nginx/portal.conf with its placeholders filled in for 127.0.0.1 and this tree."""
    site = (ROOT / "deploy" / "nginx" / "portal.conf").read_text()
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                        for p in upstreams)
    lines = [line for line in site.splitlines()
             if not line.strip().startswith(("server 127.0.0.1:", "listen [::]"))]
    site = "\n".join(lines).replace("    keepalive 32;", f"{servers}\n    keepalive 32;", 1)
    for old, new in {"listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
                     "listen 443 ssl default_server;":
                         f"listen 127.0.0.1:{https_port} ssl default_server;",
                     "listen 80;": f"listen 127.0.0.1:{http_port};",
                     "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                     "server_name portal.bank.example;": "server_name localhost;",
                     "/etc/ssl/portal/fullchain.pem": str(cert),
                     "/etc/ssl/portal/privkey.pem": str(key),
                     "/srv/portal/current/static/": f"{ROOT / 'static'}/",
                     "/var/log/nginx/": f"{logs}/"}.items():
        assert old in site, old
        site = site.replace(old, new)
    return site


def nginx_main_config(prefix: Path, site: str) -> str:
    (prefix / "site.conf").write_text(site)
    temp = "\n".join(f"    {name}_temp_path {prefix / name};"
                     for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    include /etc/nginx/mime.types;\n{temp}\n"
            f"    include {prefix / 'site.conf'};\n}}\n")


class Nginx:
    """Debian's nginx in the foreground (no daemon) with a configuration under `prefix`."""

    def __init__(self, prefix: Path, config: str, probe_url: str, verify=True):
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                           else None)
        if binary is None:
            raise FileNotFoundError("nginx")
        prefix.chmod(0o755)  # nginx's workers (nobody) read the temp paths under it
        path = prefix / "nginx.conf"
        path.write_text(config)
        check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(path)],
                               capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(check.stderr)
        self.process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(path), "-g",
                                         "daemon off;"], start_new_session=True)
        wait_until(lambda: httpx.get(probe_url, timeout=5, verify=verify).status_code < 500,
                   "nginx", 30, self.process)

    def stop(self) -> None:
        stop(self.process, signal.SIGQUIT)
