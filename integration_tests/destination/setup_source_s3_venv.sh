#!/usr/bin/env bash
# Idempotent: create .venvs/source-s3 holding airbyte-source-s3 in its own venv (it pins its
# own airbyte-cdk, as Airbyte isolates connectors). Prints the executable's path (last line).
# Used by integration_tests/destination/test_file_transfer.py's session fixture.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SOURCE_S3_VENV:-$ROOT/.venvs/source-s3}"
PY="${PYTHON:-python3}"
VERSION="${SOURCE_S3_VERSION:-4.14.2}"
# one installer at a time (make test starts one in the background; a test fixture may call too)
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ -x "$VENV/bin/source-s3" ] && [ -f "$VENV/.installed-$VERSION" ]; then
    echo "$VENV/bin/source-s3"
    exit 0
fi
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --no-compile --disable-pip-version-check "airbyte-source-s3==$VERSION" >&2
# offline: no usage reports on start
SCARF_NO_ANALYTICS=true DO_NOT_TRACK=true "$VENV/bin/source-s3" spec >/dev/null
touch "$VENV/.installed-$VERSION"
echo "$VENV/bin/source-s3"
