#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `tests/pg/cluster.sh start DIR` creates and
# starts one in DIR on a free loopback port and prints its URL (for CIVIS_TEST_DATABASE_URL);
# `tests/pg/cluster.sh stop DIR` stops it, `tests/pg/cluster.sh crash DIR` kills and restarts
# it (immediate mode: crash recovery, same port). Installs Debian's postgresql when missing.
# Trust authentication on 127.0.0.1 only: the cluster lives as long as the test run. The server
# also accepts TLS with a certificate for localhost and 127.0.0.1 issued by DIR/ca.crt (a
# throwaway CA made with the openssl command-line tool that postgresql's packages bring).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  if [ -z "$(bindir)" ] || ! command -v openssl >/dev/null; then
    { apt-get install -y postgresql openssl ||
      { apt-get update && apt-get install -y postgresql openssl; }; } >&2
  fi
  bin=$(bindir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" -U civis --auth=trust -E UTF8 --no-instructions >/dev/null
  (
    cd "$dir"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    as_owner openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 \
      -subj /CN=civis-test-ca
    as_owner openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    as_owner openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out server.crt -days 2 -extfile san.ext
  ) >/dev/null 2>&1
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 \
        -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
    start >/dev/null
  echo "postgres://civis@127.0.0.1:$port/postgres"
  ;;
crash)
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/log" -m immediate -w restart >/dev/null
  ;;
stop)
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start|stop|crash DIR" >&2
  exit 2
  ;;
esac
