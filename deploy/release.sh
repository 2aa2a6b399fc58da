#!/usr/bin/env bash
# Puts a new release in service on this machine (docs/deploy.md, "A release"):
#
#   sudo /srv/portal/releases/2026-12-03/deploy/release.sh            # the release machine
#   sudo /srv/portal/releases/2026-12-03/deploy/release.sh --no-migrate   # every other machine
#
# 1. the release's virtualenv, packages and compiled translations (make setup);
# 2. the settings are checked by building the app once with /etc/portal/portal.env;
# 3. /srv/portal/current points at the release (one atomic rename);
# 4. migrations, once: `systemctl restart portal-migrate` (on the release machine only);
# 5. the instances restart one at a time, each answering /healthz before the next goes, so
#    nginx always has one to send requests to; then the worker restarts.
# Migrations must work with the release still running (add columns before using them, drop them
# a release later): the old instances keep serving until step 5 reaches them.
set -euo pipefail

RELEASE=$(cd "$(dirname "$0")/.." && pwd -P)
APP_ROOT=${APP_ROOT:-/srv/portal}
ENV_FILE=${ENV_FILE:-/etc/portal/portal.env}
# The ports of this machine's instances (portal@PORT.service).
INSTANCES=${INSTANCES:-8001 8002}
migrate=1
[ "${1:-}" = "--no-migrate" ] && migrate=0

say() { printf '[release] %s\n' "$*"; }

say "release $RELEASE"
make -C "$RELEASE" --no-print-directory setup
chown -R root:root "$RELEASE"  # the app's user reads the code and never writes it

say "checking the settings in $ENV_FILE"
(set -a; . "$ENV_FILE"; set +a
 cd "$RELEASE" && runuser -u portal -- .venv/bin/python -c "from wsgi import app" )

say "switching $APP_ROOT/current"
ln -sfn "$RELEASE" "$APP_ROOT/current.new"
mv -T "$APP_ROOT/current.new" "$APP_ROOT/current"

if [ "$migrate" = 1 ]; then
  say "migrating (once, for every machine)"
  systemctl restart portal-migrate.service
fi

wait_healthy() {
  local port=$1
  for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"; then return 0; fi
    sleep 1
  done
  say "instance $port did not answer /healthz within 60 s: stopping the release here"
  say "(the other instances still serve; see journalctl -u portal@$port)"
  exit 1
}

for port in $INSTANCES; do
  say "restarting instance $port"
  systemctl restart "portal@$port.service"
  wait_healthy "$port"
done
say "restarting the worker"
systemctl restart portal-worker.service
say "done: $(readlink "$APP_ROOT/current")"
