#!/usr/bin/env bash
# What `make soak` runs besides the portal: Debian's nginx, redis-server and a PostgreSQL server
# (with postgresql-common's pg_createcluster). Installed when missing and run as root, else the
# exact apt-get line is printed. Installing never starts them: the soak runs its own copies on
# spare ports, and a freshly installed nginx must not take port 80 (policy-rc.d says no while
# apt-get runs, unless the machine already has one).
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make soak needs: ${missing[*]} (not a Debian system: install them yourself)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "make soak needs system packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing for the soak: ${missing[*]}"
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  guard=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' > "$guard"
  chmod +x "$guard"
  trap 'rm -f "$guard"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
