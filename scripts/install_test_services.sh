#!/usr/bin/env bash
# Install the real components the test suite starts: PostgreSQL, MariaDB,
# the Docker engine, debootstrap (apt) and Azurite (npm). Idempotent: it
# checks what is present first and is a no-op when everything is installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Same override as tests.support.services.services_dir().
SERVICES_DIR="${LAKEFORMAT_TEST_SERVICES_DIR:-$ROOT/.test_services}"
AZURITE_DIR="$SERVICES_DIR/azurite"

# Debian package -> a file whose presence proves it is installed.
declare -A PROBES=(
    [postgresql]=/usr/lib/postgresql/15/bin/initdb
    [mariadb-server]=/usr/sbin/mariadbd
    [docker.io]=/usr/sbin/dockerd
    [debootstrap]=/usr/sbin/debootstrap
)

missing=()
for pkg in postgresql mariadb-server docker.io debootstrap; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        && [ -e "${PROBES[$pkg]}" ]; then
        echo "apt: $pkg already installed"
    else
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "apt: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # policy-rc.d keeps the packages' postinst from starting system-wide
    # daemons: the tests start their own instances on free ports.
    policy_created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    status=0
    apt-get install -y --no-install-recommends "${missing[@]}" || status=$?
    if [ "$policy_created" -eq 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if [ "$status" -ne 0 ]; then
        echo "apt: install failed (exit $status)" >&2
        exit "$status"
    fi
fi

if [ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
    echo "npm: azurite already installed in $AZURITE_DIR"
else
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm: not found; install Node.js and npm first" >&2
        exit 1
    fi
    echo "npm: installing azurite into $AZURITE_DIR"
    mkdir -p "$AZURITE_DIR"
    npm install --prefix "$AZURITE_DIR" --no-audit --no-fund azurite
fi

echo "test services: all installed"
