#!/usr/bin/env bash
# Installs the outside validators of tests/it/interop.rs (tests/interop/README.md):
#   - pyHanko (PyPI, pinned) in tests/interop/.venv, run by pyhanko_verify.py;
#   - the EU DSS validator (Maven Central, eu.europa.ec.joinup.sd-dss 6.4), compiled with its
#     dependencies into tests/interop/dss/target/{classes,lib}, so that tests run `java`
#     without Maven and download nothing.
# Idempotent; run as root on Debian (installs python3-venv, a JDK or Maven only when missing).
set -euo pipefail
cd "$(dirname "$0")"

PYHANKO=0.38.0
CERTVALIDATOR=0.33.0

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "$@" \
    || { apt-get update && apt-get install -y --no-install-recommends "$@"; }
}

command -v python3 >/dev/null || apt_install python3 python3-venv
command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
command -v mvn >/dev/null || apt_install maven

# pyHanko: a venv of our own (git-ignored), recreated when missing, broken or not the pins.
want="pyHanko==$PYHANKO pyhanko-certvalidator==$CERTVALIDATOR"
have() {
  .venv/bin/python - "$PYHANKO" "$CERTVALIDATOR" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if [version("pyHanko"), version("pyhanko-certvalidator")] == sys.argv[1:] else 1)
PY
}
if ! have; then
  rm -rf .venv
  python3 -m venv .venv || { apt_install python3-venv && python3 -m venv .venv; }
  .venv/bin/pip install --quiet --disable-pip-version-check $want
  have
fi

# DSS: compile DssValidate and copy its dependencies next to it (target/ is git-ignored).
rm -rf dss/target/lib
mvn -q -B -Dstyle.color=never -f dss/pom.xml compile dependency:copy-dependencies -DoutputDirectory=target/lib

echo "interop setup: ok (pyHanko $PYHANKO, pyhanko-certvalidator $CERTVALIDATOR, DSS 6.4 with $(ls dss/target/lib | wc -l) jars, $(java -version 2>&1 | head -1))"
