#!/usr/bin/env bash
# Idempotent: create .venvs/source-faker holding airbyte-source-faker (its own venv, since it
# needs airbyte-cdk<7 and the destination runs on airbyte-cdk 7). Prints the executable's path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SOURCE_FAKER_VENV:-$ROOT/.venvs/source-faker}"
PY="${PYTHON:-python3}"
VERSION="${SOURCE_FAKER_VERSION:-7.2.1}"
# one installer at a time (make test starts one in the background; a test fixture may call too)
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ -x "$VENV/bin/source-faker" ] && [ -f "$VENV/.installed-$VERSION" ]; then
    echo "$VENV/bin/source-faker"
    exit 0
fi
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --no-compile --disable-pip-version-check "airbyte-source-faker==$VERSION" >&2
"$VENV/bin/source-faker" spec >/dev/null
touch "$VENV/.installed-$VERSION"
echo "$VENV/bin/source-faker"
