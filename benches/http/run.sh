#!/usr/bin/env bash
# HTTP benchmarks, side by side on this machine, all driven by pixelmill-load (release build).
#
#   benches/http/run.sh [loadgen|renders|hits|uploads|all]      (default: all)
#
#   loadgen  pixelmill-load against wrk, closed model, same static file from nginx, same
#            connections and threads; then how exactly pixelmill-load holds a set rate.
#   renders  stateless renders without any cache: Pixelmill's POST /v1/render of a 2560x1600
#            JPEG to a 400 px JPEG q80, against thumbor (file loader, no result storage)
#            rendering the same file to the same size and quality; three photos: baseline 4:4:4,
#            baseline 4:2:0, and a progressive original. thumbor runs as one process per core,
#            each on its own port with its own load generator (forked processes sharing one
#            socket take connections unevenly); Pixelmill gets as many generators.
#   hits     cache hits of one variant against nginx serving the same bytes as a file.
#   uploads  uploads at a fixed rate, and at saturation, on PostgreSQL + Garage.
#
# Each prints the numbers, the command that made them, and the peak RSS of the server
# (VmHWM; summed over thumbor's processes). Durations: DURATION (default 20s) per run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
shared=${PIXELMILL_SHARED:-$repo/../shared}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
DURATION=${DURATION:-20s}
what=${1:-all}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# NO_BUILD=1 uses the release binaries already built.
[ "${NO_BUILD:-}" = 1 ] || cargo build --release --quiet --package pixelmill --package pixelmill-load --manifest-path "$repo/Cargo.toml"
pixelmill="$CARGO_TARGET_DIR/release/pixelmill"
load="$CARGO_TARGET_DIR/release/pixelmill-load"
corpus=$(bash "$repo/benches/corpus.sh")
photo=$(ls "$corpus/jpeg-2560"/*.jpg | head -1)
work=$(mktemp -d)
# nginx workers run as nobody: they must reach the files.
chmod 755 "$work"
pids=()
cleanup() {
  # thumbor forks its workers: stop the children as well.
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%F)"
echo "photo: $(basename "$photo") ($(stat -c %s "$photo") bytes)"

# Peak RSS in MiB of a process and all its descendants.
peak_rss() {
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    [ -r "/proc/$pid/status" ] && total=$((total + $(awk '/VmHWM/{print $2}' "/proc/$pid/status")))
  done
  echo $((total / 1024))
}

wait_http() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing answers $1" >&2
  return 1
}

# Runs pixelmill-load with ARGS, prints its table, and echoes "rps p50 p99 errors%" of the JSON.
run_load() {
  local json="$work/report.json"
  echo "\$ pixelmill-load $*" >&2
  "$load" "$@" --quiet --json "$json" >&2 || true
  python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ms"]
print(f'{r["achieved_rps"]:.1f} {lat["p50"]:.2f} {lat["p99"]:.2f} {r["errors"]["percent"]:.2f}')
PY
}

start_pixelmill() { # PORT [ENV...]
  local port=$1; shift
  env "$@" PIXELMILL_LISTEN="127.0.0.1:$port" PIXELMILL_DATA_DIR="$work/data-$port" \
    PIXELMILL_LOG_FORMAT=json RUST_LOG=warn "$pixelmill" serve > "$work/pixelmill-$port.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/readyz"
  server=$!
}

bench_loadgen() {
  echo; echo "## pixelmill-load against wrk (nginx, 4 KiB file, closed model)"
  mkdir -p "$work/www" && head -c 4096 /dev/urandom > "$work/www/4k.bin"
  bash "$repo/benches/http/nginx.sh" "$work/www" 18081 1 & pids+=($!)
  wait_http http://127.0.0.1:18081/4k.bin
  echo "| connections | wrk rps | pixelmill-load rps | ratio |"
  echo "|---:|---:|---:|---:|"
  for c in 16 64; do
    local wrk_rps load_rps
    wrk_rps=$(wrk -t2 -c$c -d"$DURATION" http://127.0.0.1:18081/4k.bin | awk '/Requests\/sec/{print $2}')
    load_rps=$(run_load --target http://127.0.0.1:18081/4k.bin --max -c $c --threads 2 --duration "$DURATION" | cut -d' ' -f1)
    echo "| $c | $wrk_rps | $load_rps | $(python3 -c "print(f'{$load_rps/$wrk_rps:.2f}')") |"
  done
  echo; echo "## pixelmill-load holding a set rate (open model, nginx)"
  echo "| set rps | achieved rps | deviation | p50 ms | p99 ms |"
  echo "|---:|---:|---:|---:|---:|"
  for rate in 100 2000 10000; do
    read -r rps p50 p99 _ < <(run_load --target http://127.0.0.1:18081/4k.bin --rate $rate --duration "$DURATION" -c 64 --threads 2)
    echo "| $rate | $rps | $(python3 -c "print(f'{100*($rps-$rate)/$rate:+.2f}%')") | $p50 | $p99 |"
  done
}

# Renders PHOTO to 400 px JPEG q80 on thumbor and on Pixelmill, at each connection count,
# split over one load generator per core (each thumbor process has its own port and load).
render_side_by_side() { # LABEL PHOTO
  local label=$1 photo=$2 cores i c
  cores=$(nproc)
  cp "$photo" "$work/thumbor/photo.jpg"
  echo; echo "### $label: $(basename "$photo") ($(stat -c %s "$photo") bytes)"
  echo "| server | connections | rps | p50 ms | p99 ms | errors | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for c in 4 16; do
    for server in thumbor Pixelmill; do
      local loads=()
      for i in $(seq 0 $((cores - 1))); do
        local args=(--max -c $((c / cores)) --duration "$DURATION" --quiet --json "$work/load-$i.json")
        if [ $server = thumbor ]; then
          args+=(--target "http://127.0.0.1:$((18888 + i))/unsafe/400x0/filters:quality(80)/photo.jpg")
        else
          args+=(--target "http://127.0.0.1:18082/v1/render?w=400&fmt=jpeg&q=80" --method POST --body "$photo"
            -H 'Content-Type: image/jpeg')
        fi
        [ "$i" = 0 ] && echo "\$ pixelmill-load ${args[*]}   (x$cores)" >&2
        "$load" "${args[@]}" >&2 &
        loads+=($!)
      done
      wait "${loads[@]}" || true
      local rss
      if [ $server = thumbor ]; then
        rss=0
        for pid in "${thumbors[@]}"; do rss=$((rss + $(peak_rss "$pid"))); done
      else
        rss=$(peak_rss "$server_pid")
      fi
      python3 - "$server" "$c" "$rss" "$work"/load-*.json <<'PY'
import json, sys
server, c, rss, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = [json.load(open(p)) for p in paths]
rps = sum(r["achieved_rps"] for r in runs)
# Latency: the worst generator's percentiles; errors over all requests.
p50 = max(r["latency_ms"]["p50"] for r in runs)
p99 = max(r["latency_ms"]["p99"] for r in runs)
sent = sum(r["requests"] for r in runs)
errors = sum(r["errors"]["total"] for r in runs)
print(f"| {server} | {c} | {rps:.1f} | {p50:.2f} | {p99:.2f} | {100 * errors / max(sent, 1):.2f}% | {rss} |")
PY
      rm -f "$work"/load-*.json
    done
  done
}

bench_renders() {
  echo; echo "## Renders without cache: 2560x1600 JPEG -> 400 px JPEG q80, all cores"
  echo "thumbor: one process per core, each on its own port with its own load generator;"
  echo "Pixelmill: one server, the same number of load generators, same connections in all."
  bash "$shared/peers/install.sh" >&2
  mkdir -p "$work/thumbor"
  cp "$photo" "$work/thumbor/photo.jpg"
  thumbors=()
  local i
  for i in $(seq 0 $(($(nproc) - 1))); do
    THUMBOR_PROCESSES=1 bash "$shared/peers/thumbor.sh" "$work/thumbor" $((18888 + i)) > "$work/thumbor-$i.log" 2>&1 &
    pids+=($!)
    thumbors+=($!)
  done
  for i in $(seq 0 $(($(nproc) - 1))); do
    wait_http "http://127.0.0.1:$((18888 + i))/unsafe/400x0/filters:quality(80)/photo.jpg"
  done
  start_pixelmill 18082 PIXELMILL_WRITES_PER_SECOND=0
  server_pid=$server
  render_side_by_side "Baseline, 4:4:4" "$corpus/jpeg-2560/Autumn.jpg"
  render_side_by_side "Baseline, 4:2:0" "$corpus/jpeg-2560/BytheWater.jpg"
  render_side_by_side "Progressive, the original as shipped" "$corpus/jpeg-2560-original/Autumn.jpg"
}

bench_hits() {
  echo; echo "## Cache hits on one variant (400 px WebP of the photo) against nginx serving the same bytes"
  start_pixelmill 18083 PIXELMILL_WRITES_PER_SECOND=0
  local id
  id=$(curl -fsS --data-binary @"$photo" -H 'Content-Type: image/jpeg' http://127.0.0.1:18083/v1/images | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  mkdir -p "$work/variant"
  curl -fsS -o "$work/variant/v.webp" "http://127.0.0.1:18083/v1/images/$id/render?w=400&fmt=webp"
  bash "$repo/benches/http/nginx.sh" "$work/variant" 18084 & pids+=($!)
  local nginx=$!
  wait_http http://127.0.0.1:18084/v.webp
  echo "variant: $(stat -c %s "$work/variant/v.webp") bytes"
  echo "| server | connections | rps | p50 ms | p99 ms | errors | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for c in 16 64; do
    read -r rps p50 p99 err < <(run_load --target http://127.0.0.1:18084/v.webp --max -c $c --duration "$DURATION")
    echo "| nginx (2 workers) | $c | $rps | $p50 | $p99 | $err% | $(peak_rss $nginx) |"
    read -r rps p50 p99 err < <(run_load --target "http://127.0.0.1:18083/v1/images/$id/render?w=400&fmt=webp" --max -c $c --duration "$DURATION")
    echo "| Pixelmill | $c | $rps | $p50 | $p99 | $err% | $(peak_rss $server) |"
  done
}

bench_uploads() {
  echo; echo "## Uploads of the photo (made unique per request) on PostgreSQL + Garage"
  local services
  services=$(bash "$repo/.ci/services.sh" start)
  eval "$services"
  local admin=$PIXELMILL_TEST_DATABASE_URL bucket=$PIXELMILL_TEST_S3_URL endpoint=$PIXELMILL_TEST_S3_ENDPOINT
  # The service refuses PIXELMILL_* variables it does not know.
  unset PIXELMILL_TEST_DATABASE_URL PIXELMILL_TEST_S3_URL PIXELMILL_TEST_S3_ENDPOINT
  local database="pixelmill_bench_$$"
  psql "$admin" -qc "CREATE DATABASE $database" >/dev/null
  start_pixelmill 18085 DATABASE_URL="${admin%/*}/$database" PIXELMILL_STORAGE="$bucket/bench-$$" \
    PIXELMILL_S3_ENDPOINT="$endpoint" PIXELMILL_WRITES_PER_SECOND=0
  mkdir -p "$work/uploads" && cp "$photo" "$work/uploads/"
  echo "| load | rps | p50 ms | p99 ms | errors | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|"
  read -r rps p50 p99 err < <(run_load --target-base http://127.0.0.1:18085 --scenario upload --images "$work/uploads" --rate 20 --duration "$DURATION")
  echo "| 20/s set | $rps | $p50 | $p99 | $err% | $(peak_rss $server) |"
  read -r rps p50 p99 err < <(run_load --target-base http://127.0.0.1:18085 --scenario upload --images "$work/uploads" --max -c 8 --duration "$DURATION")
  echo "| closed, 8 connections | $rps | $p50 | $p99 | $err% | $(peak_rss $server) |"
  kill "$server" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
  bash "$repo/.ci/services.sh" stop >/dev/null
}

case "$what" in
  loadgen) bench_loadgen ;;
  renders) bench_renders ;;
  hits) bench_hits ;;
  uploads) bench_uploads ;;
  all) bench_loadgen; bench_renders; bench_hits; bench_uploads ;;
  *) echo "usage: $0 [loadgen|renders|hits|uploads|all]" >&2; exit 2 ;;
esac
