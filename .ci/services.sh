#!/usr/bin/env bash
# Starts the real services the tests talk to, and stops what it started:
#   PostgreSQL 15 (the machine's cluster, password login over TCP) and Garage (a one-node S3
#   server with a bucket and a key).
#   bash .ci/services.sh start   -> prints `export VAR=...` lines for the tests; idempotent
#   bash .ci/services.sh stop    -> stops only what `start` started
#   bash .ci/services.sh pause-s3|resume-s3|stop-postgres|start-postgres -> faults, for tests/tests/faults.rs
# State (Garage's files, what was started) lives in $PIXELMILL_SERVICES_DIR
# (default ~/.cache/pixelmill-services).
set -euo pipefail
state=${PIXELMILL_SERVICES_DIR:-$HOME/.cache/pixelmill-services}
mkdir -p "$state"
pg_password=pixelmill-test
garage_key_id=GK0123456789abcdef01234567
garage_secret=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
garage_bucket=pixelmill-test
garage_conf=$state/garage.toml
# Garage is built from crates.io once per machine, pinned: a new release is a deliberate change.
garage_version=2.5.0

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if ! pg_lsclusters -h | awk '$1==15 && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster 15 main start
    touch "$state/postgres.started"
  fi
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD '$pg_password'\"" >/dev/null
}

ensure_garage() {
  if ! { command -v garage >/dev/null || [ -x "$HOME/.cargo/bin/garage" ]; } \
    || ! "$(command -v garage || echo "$HOME/.cargo/bin/garage")" --version 2>/dev/null | grep -qE "[: v]$garage_version( |$)"; then
    # Only what the tests use: the S3 API on SQLite metadata (no LMDB, K2V or metrics).
    cargo install garage --locked --quiet --version "$garage_version" \
      --no-default-features --features bundled-libs,sqlite >&2
  fi
  local garage; garage=$(command -v garage || echo "$HOME/.cargo/bin/garage")
  if [ ! -f "$garage_conf" ]; then
    cat > "$garage_conf" <<CONF
metadata_dir = "$state/garage/meta"
data_dir = "$state/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:3900"
root_domain = ".s3.garage.localhost"
CONF
  fi
  if ! { [ -f "$state/garage.pid" ] && kill -0 "$(cat "$state/garage.pid")" 2>/dev/null; }; then
    nohup "$garage" -c "$garage_conf" server > "$state/garage.log" 2>&1 &
    echo $! > "$state/garage.pid"
  fi
  # `node id` reads a key file; `status` needs the server itself to answer.
  local ready=""
  for _ in $(seq 150); do
    "$garage" -c "$garage_conf" status >/dev/null 2>&1 && ready=yes && break
    sleep 0.2
  done
  [ -n "$ready" ] || { echo "garage did not start; see $state/garage.log" >&2; exit 1; }
  local node
  node=$("$garage" -c "$garage_conf" node id -q 2>/dev/null | cut -d@ -f1)
  # A fresh node has layout version 0 and no role; give it one once.
  if "$garage" -c "$garage_conf" layout show 2>/dev/null | grep -q "layout version: 0$"; then
    "$garage" -c "$garage_conf" layout assign -z dc1 -c 1G "$node" >/dev/null
    "$garage" -c "$garage_conf" layout apply --version 1 >/dev/null
  fi
  "$garage" -c "$garage_conf" bucket info "$garage_bucket" >/dev/null 2>&1 \
    || "$garage" -c "$garage_conf" bucket create "$garage_bucket" >/dev/null
  "$garage" -c "$garage_conf" key info "$garage_key_id" >/dev/null 2>&1 \
    || "$garage" -c "$garage_conf" key import --yes -n pixelmill-test "$garage_key_id" "$garage_secret" >/dev/null
  "$garage" -c "$garage_conf" bucket allow --read --write --owner "$garage_bucket" --key "$garage_key_id" >/dev/null
}

case "${1:-}" in
  start)
    ensure_postgres >&2
    ensure_garage >&2
    echo "export PIXELMILL_TEST_DATABASE_URL=postgres://postgres:$pg_password@127.0.0.1:5432/postgres"
    echo "export PIXELMILL_TEST_S3_URL=s3://$garage_bucket"
    echo "export PIXELMILL_TEST_S3_ENDPOINT=http://127.0.0.1:3900"
    echo "export AWS_ACCESS_KEY_ID=$garage_key_id"
    echo "export AWS_SECRET_ACCESS_KEY=$garage_secret"
    echo "export AWS_REGION=garage"
    ;;
  stop)
    if [ -f "$state/garage.pid" ]; then
      pid=$(cat "$state/garage.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$state/garage.pid"
    fi
    if [ -f "$state/postgres.started" ]; then
      pg_ctlcluster 15 main stop || true
      rm -f "$state/postgres.started"
    fi
    ;;
  # Faults for the reliability tests: Garage frozen and thawed (its connections stay open and
  # unanswered, like a store that hangs), PostgreSQL stopped and started under the service.
  pause-s3) kill -STOP "$(cat "$state/garage.pid")" ;;
  resume-s3) kill -CONT "$(cat "$state/garage.pid")" ;;
  stop-postgres) pg_ctlcluster 15 main stop ;;
  start-postgres)
    pg_ctlcluster 15 main start
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
    ;;
  *) echo "usage: $0 start|stop|pause-s3|resume-s3|stop-postgres|start-postgres" >&2; exit 2 ;;
esac
