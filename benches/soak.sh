#!/usr/bin/env bash
# Soak: does Pixelmill's memory stay flat under long mixed traffic? (Not run in CI: it takes
# DURATION, 10 minutes by default.)
#
#   benches/soak.sh            DURATION (default 600s), RATE (default 40 requests/s),
#                              PROFILE (release, the default, or debug: the binaries the tests ran)
#
# A release `pixelmill serve` on the embedded default takes, at once:
#   - pixelmill-load's `mixed` scenario at RATE: cache hits, misses (a new spec every time) and
#     uploads of photos of several formats and sizes (JPEG from the corpus, and PNG, WebP and GIF
#     renders of it made here);
#   - a second pixelmill-load at 2 requests/s of hostile specs on a stored image (a cover of a
#     16384x1 box from a 1x1 source, which the render plan refuses with 422).
# Its resident memory (VmRSS) is sampled every 10 s and printed as a table with the peak (VmHWM)
# at the end; RELIABILITY.md keeps the last run's numbers.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
DURATION=${DURATION:-600s}
RATE=${RATE:-40}
PROFILE=${PROFILE:-release}
if [ "${NO_BUILD:-}" != 1 ]; then
  if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --package pixelmill --package pixelmill-load --manifest-path "$repo/Cargo.toml"
  else
    cargo build --quiet --workspace --all-targets --manifest-path "$repo/Cargo.toml"
  fi
fi
pixelmill="$CARGO_TARGET_DIR/$PROFILE/pixelmill"
load="$CARGO_TARGET_DIR/$PROFILE/pixelmill-load"
corpus=$(bash "$repo/benches/corpus.sh")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Uploads: three corpus photos as JPEG, and each rendered to PNG, WebP and GIF at two sizes.
mkdir -p "$work/images"
for photo in $(ls "$corpus"/jpeg-2560/*.jpg | head -3); do
  cp "$photo" "$work/images/"
  for spec in "w=1200&fmt=png" "w=800&fmt=webp" "w=400&fmt=gif" "w=1600&fmt=webp&lossless=1"; do
    "$pixelmill" render --out-dir "$work/images" "$spec" "$photo" >/dev/null
  done
done

port=18090
base="http://127.0.0.1:$port"
PIXELMILL_LISTEN="127.0.0.1:$port" PIXELMILL_DATA_DIR="$work/data" PIXELMILL_WRITES_PER_SECOND=0 \
  PIXELMILL_LOG_FORMAT=json RUST_LOG=warn "$pixelmill" serve > "$work/pixelmill.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break; sleep 0.2; done

python3 - "$work/one.png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30")) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
one=$(curl -fsS --data-binary @"$work/one.png" -H 'content-type: image/png' "$base/v1/images" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%F)"
echo "\$ pixelmill-load --target-base $base --scenario mixed --images $work/images --rate $RATE --duration $DURATION"
"$load" --target-base "$base" --scenario mixed --images "$work/images" --rate "$RATE" --duration "$DURATION" \
  -c 16 --quiet --json "$work/mixed.json" > "$work/mixed.txt" 2>&1 &
mixed=$!
pids+=("$mixed")
"$load" --target "$base/v1/images/$one/render?w=16384&h=1&fit=cover&enlarge=1" --rate 2 --duration "$DURATION" \
  -c 2 --quiet --json "$work/hostile.json" > "$work/hostile.txt" 2>&1 &
hostile=$!
pids+=("$hostile")

echo "| t (s) | RSS MiB |"
echo "|---:|---:|"
started=$SECONDS
while kill -0 "$mixed" 2>/dev/null; do
  echo "| $((SECONDS - started)) | $(( $(awk '/VmRSS/{print $2}' "/proc/$server/status") / 1024 )) |"
  sleep 10
done
wait "$mixed" || true
wait "$hostile" || true
echo "peak RSS (VmHWM): $(( $(awk '/VmHWM/{print $2}' "/proc/$server/status") / 1024 )) MiB"
python3 - "$work/mixed.json" "$work/hostile.json" <<'PY'
import json, sys
for name, path in zip(("mixed", "hostile"), sys.argv[1:]):
    r = json.load(open(path))
    lat = r["latency_ms"]
    print(f'{name}: {r["requests"]} requests, {r["achieved_rps"]:.1f}/s, p50 {lat["p50"]:.1f} ms, p99 {lat["p99"]:.1f} ms, '
          f'errors {r["errors"]["percent"]:.2f}% {r["errors"].get("by_status", {})}')
PY
