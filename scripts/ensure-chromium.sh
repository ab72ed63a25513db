#!/usr/bin/env bash
# Install Debian's Chromium (and the fonts its screenshots need) for the dashboard's browser
# tests, unless a chromium is already on the PATH. Debian's package, not a browser download:
# the machines reach the package registries only. Needs root (CI runs as root).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "Chromium is installed: $(chromium --version 2>/dev/null || echo 'version unknown')"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing and this is not root: install it with 'apt-get install chromium'" >&2
  exit 1
fi

echo "Chromium is missing: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core >/dev/null
echo "Chromium is installed: $(chromium --version 2>/dev/null || echo 'version unknown')"
