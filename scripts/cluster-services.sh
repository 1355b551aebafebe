#!/usr/bin/env bash
# Starts the services a Natter cluster runs on — PostgreSQL and nats-server, both from apt — on
# loopback with throw-away data in DIR, and prints the environment the cluster suites read:
#
#   eval "$(bash scripts/cluster-services.sh start /tmp/natter-services)"
#   ... NATTER_CLUSTER_POSTGRES and NATTER_TEST_NATS are set: the cluster suite runs ...
#   NATTER_TEST_POSTGRES=$NATTER_CLUSTER_POSTGRES cargo test -p natter-e2e   # every suite on PG
#   bash scripts/cluster-services.sh stop /tmp/natter-services
#
# PostgreSQL refuses to run as root, so as root the database runs as the `postgres` user the
# package created (or `nobody`). Nothing listens beyond 127.0.0.1. PostgreSQL runs with fsync
# off (the data is thrown away; the suites test Natter's durability, not PostgreSQL's) unless
# NATTER_PG_DURABLE=1, which benchmarks use to measure what a real deployment pays.
set -euo pipefail

cmd="${1:?usage: cluster-services.sh start|stop DIR}"
dir="${2:?usage: cluster-services.sh start|stop DIR}"

pg_bin() {
  local b
  for b in /usr/lib/postgresql/*/bin; do
    [ -x "$b/initdb" ] && { echo "$b"; return; }
  done
  echo "cluster-services: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_db_user() {
  if [ "$(id -u)" = 0 ]; then
    local user=postgres
    id "$user" >/dev/null 2>&1 || user=nobody
    # From / : the caller's directory (a fresh clone under a private mktemp dir, say) may be
    # closed to that user.
    (cd / && runuser -u "$user" -- "$@")
  else
    "$@"
  fi
}

case "$cmd" in
start)
  bin="$(pg_bin)"
  command -v nats-server >/dev/null || {
    echo "cluster-services: nats-server is not installed (apt-get install nats-server)" >&2
    exit 1
  }
  rm -rf "$dir"
  mkdir -p "$dir/pg" "$dir/nats"
  [ "$(id -u)" = 0 ] && chown -R "$(id -u postgres 2>/dev/null || id -u nobody)" "$dir/pg"
  chmod 700 "$dir/pg"
  pg_port="$(free_port)"
  nats_port="$(free_port)"
  as_db_user "$bin/initdb" -D "$dir/pg/data" -U natter --auth=trust -E UTF8 --locale=C \
    >"$dir/pg/initdb.log" 2>&1
  durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${NATTER_PG_DURABLE:-}" = 1 ] && durability=""
  # Connections: every test server holds a pool of up to 9.
  as_db_user "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/pg $durability -c max_connections=400" \
    start >/dev/null
  # Its own output goes to the log, never to our stdout: callers read this script's output with
  # $(...), which would wait for the server to exit.
  nats-server -a 127.0.0.1 -p "$nats_port" -P "$dir/nats/pid" -l "$dir/nats/server.log" \
    </dev/null >/dev/null 2>&1 &
  disown
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
  done
  echo "export NATTER_CLUSTER_POSTGRES=postgres://natter@127.0.0.1:$pg_port/postgres"
  echo "export NATTER_TEST_NATS=nats://127.0.0.1:$nats_port"
  ;;
stop)
  bin="$(pg_bin)"
  [ -d "$dir/pg/data" ] && as_db_user "$bin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$dir/nats/pid" ] && kill "$(cat "$dir/nats/pid")" 2>/dev/null || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: cluster-services.sh start|stop DIR" >&2
  exit 2
  ;;
esac
