#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `tests/pg/cluster.sh start DIR` creates and
# starts one in DIR on a free loopback port and prints its URL (for CIVIS_TEST_DATABASE_URL);
# `tests/pg/cluster.sh stop DIR` stops it. Installs Debian's postgresql when it is missing.
# Trust authentication on 127.0.0.1 only: the cluster lives as long as the test run.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  if [ -z "$(bindir)" ]; then
    { apt-get install -y postgresql || { apt-get update && apt-get install -y postgresql; }; } >&2
  fi
  bin=$(bindir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" -U civis --auth=trust -E UTF8 --no-instructions >/dev/null
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null
  echo "postgres://civis@127.0.0.1:$port/postgres"
  ;;
stop)
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
