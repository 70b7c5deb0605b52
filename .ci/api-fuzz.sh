#!/usr/bin/env bash
# API fuzzing of the HTTP service with Schemathesis, against the OpenAPI document it serves.
#
#   bash .ci/api-fuzz.sh        (from anywhere)
#
# It starts `pixelmill serve` (PIXELMILL_BINARY, which `cargo xtask ci` sets to the binary its
# tests ran; else the release build, built when missing) on a free loopback port with an empty data directory,
# seeds a few images, and lets Schemathesis generate requests for every operation of
# /openapi.json, valid and invalid: query strings, path ids, headers and bodies (junk, and real
# JPEG, PNG, GIF and WebP images through .ci/api-fuzz-hooks.py). Every response must
#   1. not be a 5xx (not_a_server_error): nothing a client sends is a server error;
#   2. have a status code the document lists for the operation (status_code_conformance);
#   3. have the content type the document lists for that status (content_type_conformance);
#   4. carry the headers the document requires (response_headers_conformance);
#   5. have a body that validates against the document's schema (response_schema_conformance);
#   6. if it is an image, be the format its Content-Type names (image_matches_content_type,
#      defined in the hooks: the document types image bodies `image/*`, which Schemathesis
#      cannot validate).
# The phases are Schemathesis's own: examples, coverage (boundary and invalid values of every
# parameter), fuzzing, and stateful sequences that follow the document's links (upload, then
# metadata, original, render, delete). Any failure fails the script; Schemathesis prints each
# with a curl command that replays it, and its JUnit and VCR reports (every request and
# response) are kept in $CARGO_TARGET_DIR/api-fuzz/.
#
# The write rate limit is off (PIXELMILL_WRITES_PER_SECOND=0: otherwise the fuzzer meets 429s)
# and outputs are capped at one megapixel, so that a generated `w=9000&h=9000&fmt=avif` is a
# quick 422 rather than minutes of encoding: this run looks for wrong answers, not for speed.
# About a minute on two cores with the default number of examples (some 3,000 requests).
#
# Offline except PyPI: Schemathesis is pinned and installed into $HOME/.cache/pixelmill-tools/
# only when missing or at another version.
#   PIXELMILL_FUZZ_EXAMPLES   test cases per operation and phase (default 500)
#   PIXELMILL_FUZZ_SEED       replay the run that printed this seed
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS="$HOME/.cache/pixelmill-tools"
VENV="$TOOLS/schemathesis"
PYTHON_PACKAGES=("schemathesis==4.32.5")
EXAMPLES="${PIXELMILL_FUZZ_EXAMPLES:-500}"
# Schemathesis's checks, and the hooks' own (image_matches_content_type).
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance"
CHECKS+=",response_schema_conformance,image_matches_content_type"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The binary under test: PIXELMILL_BINARY (cargo xtask ci passes the one its tests ran), else
# the release build.
BINARY="${PIXELMILL_BINARY:-$TARGET_DIR/release/pixelmill}"
REPORTS="$TARGET_DIR/api-fuzz"
# Named specs for `preset=`; the fuzzer draws these names as well as unknown ones.
PRESETS="thumb=w=64&h=64&fit=cover;hero=w=200&fmt=webp;gray=gray=1&q=50"

# shellcheck source=.ci/lib.sh
source .ci/lib.sh

# --- tools ----------------------------------------------------------------------------------

log "tools"
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
mkdir -p "$TOOLS"
[[ -x "$VENV/bin/st" ]] || rm -f "$VENV.stamp"
stamped "$VENV.stamp" "${PYTHON_PACKAGES[*]}" make_venv "$VENV" "${PYTHON_PACKAGES[@]}"
ST="$VENV/bin/st"
"$ST" --version
"$ST" --version | grep -q ' 4\.' || { echo "Schemathesis 4 expected (the flags below are its)" >&2; exit 1; }

if [[ ! -x "$BINARY" ]]; then
  log "release build"
  cargo build --release -p pixelmill
  BINARY="$TARGET_DIR/release/pixelmill"
fi

# --- server ---------------------------------------------------------------------------------

WORK="$(mktemp -d)"
SERVER_PID=""
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "server"
# The service refuses PIXELMILL_* variables it does not know (CI sets some for the scripts),
# so it starts with none but its own.
unset_pixelmill=()
while IFS= read -r name; do
  unset_pixelmill+=(-u "$name")
done < <(compgen -e | grep '^PIXELMILL_' || true)
env "${unset_pixelmill[@]}" \
  PIXELMILL_LISTEN=127.0.0.1:0 \
  PIXELMILL_DATA_DIR="$WORK/data" \
  PIXELMILL_WRITES_PER_SECOND=0 \
  PIXELMILL_MAX_OUTPUT_PIXELS=1000000 \
  PIXELMILL_PRESETS="$PRESETS" \
  PIXELMILL_SHUTDOWN_DRAIN_SECONDS=5 \
  "$BINARY" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Port 0: the address the kernel gave is in the `listening` line of the log.
ADDRESS=""
for _ in $(seq 1 300); do
  ADDRESS="$(sed -n 's/.*"message":"listening","address":"\([^"]*\)".*/\1/p' "$WORK/server.log" | head -n 1)"
  [[ -n "$ADDRESS" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$ADDRESS" ]]; then
  cat "$WORK/server.log" >&2
  echo "pixelmill serve did not start" >&2
  exit 1
fi
BASE="http://$ADDRESS"
for _ in $(seq 1 100); do
  curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$BASE/readyz"
echo
echo "$("$BINARY" --version) listening on $BASE (pid $SERVER_PID)"

# --- seed -----------------------------------------------------------------------------------

log "seed"
# Sample images: two PNGs (the repository holds no binary fixtures), and the same picture
# as JPEG, GIF and WebP made by `pixelmill render`.
mkdir -p "$WORK/images"
python3 .ci/api-fuzz-hooks.py "$WORK/images"
for format in jpeg gif webp; do
  "$BINARY" render --out-dir "$WORK/images" "fmt=$format" "$WORK/images/rgba.png" >/dev/null
done

upload() {
  curl -fsS -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$BASE/v1/images" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
# Images that renders, metadata and originals are fuzzed against, and one that DELETE may take.
IMAGE_IDS=()
for file in rgba.png rgba.png.jpg rgba.png.gif rgba.png.webp; do
  IMAGE_IDS+=("$(upload "$WORK/images/$file")")
done
DOOMED_ID="$(upload "$WORK/images/gray.png")"
echo "seeded ${#IMAGE_IDS[@]} images to render and 1 to delete; samples: $(cd "$WORK/images" && echo *)"

quoted() { printf '"%s", ' "$@" | sed 's/, $//'; }
# Dictionaries: values the fuzzer draws with the given probability, and generates otherwise,
# so that most requests get past the first parameter check to the engine.
cat >"$WORK/schemathesis.toml" <<EOF
# Schemathesis's own state (the failures it keeps for \`st replay\`) stays out of the checkout.
[cache]
directory = "$REPORTS/cache"

[dictionaries]
image-ids = { values = [$(quoted "${IMAGE_IDS[@]}")] }
doomed-ids = { values = ["$DOOMED_ID"] }
sizes = { values = [1, 2, 17, 64, 100, 400, 1200] }
qualities = { values = [1, 50, 80, 100] }
ratios = { values = [1, 1.5, 2, 4] }
sigmas = { values = [0, 0.3, 1, 2.5, 10] }
fits = { values = ["cover", "contain", "fill", "inside", "outside"] }
gravities = { values = ["center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest", "smart"] }
crops = { values = ["0,0,10,10", "5,5,50,30", "0,0,96,64", "90,60,10,10", "0,0,16,40"] }
rotations = { values = [0, 90, 180, 270] }
flips = { values = ["h", "v"] }
formats = { values = ["jpeg", "png", "webp", "avif", "gif", "auto"] }
backgrounds = { values = ["ffffff", "00000080", "ff8800"] }
presets = { values = ["thumb", "hero", "gray"] }

[parameters]
"path.id" = { dictionary = "image-ids", probability = 0.8 }
"query.w" = { dictionary = "sizes", probability = 0.6 }
"query.h" = { dictionary = "sizes", probability = 0.6 }
"query.q" = { dictionary = "qualities", probability = 0.7 }
"query.dpr" = { dictionary = "ratios", probability = 0.7 }
"query.blur" = { dictionary = "sigmas", probability = 0.7 }
"query.sharpen" = { dictionary = "sigmas", probability = 0.7 }
"query.fit" = { dictionary = "fits", probability = 0.7 }
"query.gravity" = { dictionary = "gravities", probability = 0.7 }
"query.crop" = { dictionary = "crops", probability = 0.5 }
"query.rotate" = { dictionary = "rotations", probability = 0.7 }
"query.flip" = { dictionary = "flips", probability = 0.7 }
"query.fmt" = { dictionary = "formats", probability = 0.7 }
"query.bg" = { dictionary = "backgrounds", probability = 0.7 }
"query.preset" = { dictionary = "presets", probability = 0.7 }

[[operations]]
include-operation-id = "delete"
parameters = { "path.id" = { dictionary = "doomed-ids", probability = 0.5 } }
EOF

# --- fuzz -----------------------------------------------------------------------------------

log "schemathesis ($EXAMPLES examples per operation)"
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
seed=()
[[ -n "${PIXELMILL_FUZZ_SEED:-}" ]] && seed=(--seed "$PIXELMILL_FUZZ_SEED")
start=$SECONDS
set +e
# Hypothesis keeps its caches in the scratch directory, not in the checkout.
SCHEMATHESIS_HOOKS=.ci/api-fuzz-hooks.py FUZZ_IMAGES="$WORK/images" HYPOTHESIS_STORAGE_DIRECTORY="$WORK/hypothesis" \
  "$ST" --config-file "$WORK/schemathesis.toml" run "$BASE/openapi.json" \
  --checks "$CHECKS" \
  --max-examples "$EXAMPLES" \
  --generation-database none \
  --workers 2 \
  --request-timeout 60 \
  --no-color \
  --report junit,vcr \
  --report-dir "$REPORTS" \
  "${seed[@]}"
status=$?
set -e

log "summary"
alive="yes"
kill -0 "$SERVER_PID" 2>/dev/null || alive="no (it died during the run)"
requests="$(grep -c '"message":"request"' "$WORK/server.log" || true)"
server_errors="$(grep -c '"message":"request".*"status":5[0-9][0-9]' "$WORK/server.log" || true)"
echo "$requests requests served, $server_errors answered 5xx; server still running: $alive"
# The internal cause of a 5xx is logged, never sent: show it next to the failure.
grep -E '"level":"(ERROR|WARN)"' "$WORK/server.log" | head -n 50 || true
echo "reports: $REPORTS ($((SECONDS - start))s)"
if [[ "$alive" != "yes" ]]; then
  tail -n 50 "$WORK/server.log" >&2
  exit 1
fi
if [[ "$status" != 0 ]]; then
  echo "api-fuzz: Schemathesis found failures (exit $status)" >&2
  exit 1
fi
echo "api-fuzz: no failure"
