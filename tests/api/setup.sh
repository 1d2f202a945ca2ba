#!/usr/bin/env bash
# Installs schemathesis (PyPI, pinned) in tests/api/.venv for the API fuzzing run of
# tests/it/api_fuzz.rs (tests/api/README.md). Idempotent; installs python3-venv when missing.
set -euo pipefail
cd "$(dirname "$0")"

SCHEMATHESIS=4.32.5

have() {
  .venv/bin/python - "$SCHEMATHESIS" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("schemathesis") == sys.argv[1] else 1)
PY
}
if ! have; then
  rm -rf .venv
  python3 -m venv .venv || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends python3-venv \
      || { apt-get update && apt-get install -y --no-install-recommends python3-venv; }
    python3 -m venv .venv
  }
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
  have
fi
.venv/bin/schemathesis --version
