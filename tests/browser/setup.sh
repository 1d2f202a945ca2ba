#!/usr/bin/env bash
# Installs what the browser end-to-end test needs (tests/it/browser.rs): Debian's Chromium,
# playwright-core and openid-client from the lock file; and jose, the independent JAdES verifier
# of tests/it/formats.rs (jades-verify.mjs), which also needs the openssl command.
# Idempotent; run as root on a Debian machine.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends chromium
fi

if ! command -v openssl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends openssl
fi

if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/openid-client ] || [ ! -d node_modules/jose ]; then
  # playwright-core never downloads a browser of its own; the test uses /usr/bin/chromium.
  # openid-client plays the agency app (oidc-rp.mjs); jose verifies JAdES (jades-verify.mjs).
  npm ci --no-audit --no-fund
fi

echo "browser test setup: ok ($(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?'), playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version"), openid-client $(node -p "require('./node_modules/openid-client/package.json').version"), jose $(node -p "require('./node_modules/jose/package.json').version"), $(openssl version))"
