#!/usr/bin/env bash
# Installs the Debian packages the portal needs, or says exactly what to install.
# WeasyPrint needs Pango and HarfBuzz's subsetter (without libharfbuzz-subset0 a Chinese page takes
# seconds), Chinese text needs a CJK font with real bold, the PDF tests need poppler-utils, and the
# browser tests drive Debian's chromium.
set -euo pipefail
packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk poppler-utils chromium)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "note: not a Debian system; make sure these are installed: ${packages[*]}" >&2
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing system packages (once; this takes a minute or two): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
