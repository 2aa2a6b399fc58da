#!/usr/bin/env bash
# `make run`'s last step: the delivery worker (webhooks, e-mail, scorecard upkeep) in the
# background, the web server in the foreground; stopping the server stops the worker too.
set -euo pipefail
FLASK=(.venv/bin/flask --app wsgi)
"${FLASK[@]}" worker > instance/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT INT TERM
echo "Delivery worker running (log: instance/worker.log)"
"${FLASK[@]}" run --host 127.0.0.1 --port "${PORT:-5000}"
