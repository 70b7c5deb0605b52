#!/usr/bin/env bash
# Coverage-guided fuzzing of the engine (fuzz/, cargo-fuzz and libFuzzer):
#
#   bash .ci/fuzz.sh        FUZZ_SECONDS per target (default 60); FUZZ_SANITIZER none (the
#                           default) or address
#
# fuzz/ builds the engine alone (the crate without its `server` feature), with its own target
# directory per sanitizer under $FUZZ_DIR, so a run after the first rebuilds only what changed.
#
# Why no AddressSanitizer by default: it instruments Rust code only. The C decoders and
# encoders (libjpeg-turbo, libwebp) are built by their -sys crates without it, so an overflow
# inside them goes unseen either way, and safe Rust has none to find. What it did add: a build
# of the engine at one codegen unit that took 305 s after a one-line change (136 s without,
# at 16 units), and fewer executions: on the same corpora in 30 s, decode 1,421 against 6,969
# without it, render 13,298 against 33,083 (2026-12-05). The coverage instrumentation, the
# debug assertions and overflow checks, and every target stay. FUZZ_SANITIZER=address runs
# the old build, for a change to the engine's few unsafe blocks (the libwebp FFI).
#
# Targets:
#   decode  any bytes (HEIC too, with libheif-dev installed) through upload validation and a 48 px render; an error of the input's
#           making is fine, a panic, an abort, a sanitizer report or EngineError::Internal is not.
#   spec    any query through the spec parser; a spec that parses must parse again from its
#           canonical form to the same canonical form.
#   jpeg    any bytes through Pixelmill's own JPEG decoder at 1/8, 1/4 and 1/2; no panic, no
#           `Internal`, and pixels of exactly the scaled size when it succeeds.
#   render  (spec, bytes) pairs: the first line a query, the rest an image, rendered under small
#           limits; no panic, no `Internal`, nothing past the render budget.
# Seeds: the decode corpus starts from small JPEG, PNG, WebP and GIF files rendered by the
# release `pixelmill render` from the photo corpus; the spec corpus from example queries. The
# corpora grow in $FUZZ_DIR between runs. A crash leaves its input in fuzz/artifacts/<target>/
# and fails the script: turn it into a sample of tests/src/hostile.rs (or a spec test) with the
# fix, so it stays a regression test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=.ci/lib.sh
source .ci/lib.sh

CARGO_FUZZ_VERSION="0.13.2"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
FUZZ_DIR="${FUZZ_DIR:-$HOME/.cache/pixelmill-fuzz}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
# cargo-fuzz passes unstable flags (-Zsanitizer) to the machine's stable compiler.
export RUSTC_BOOTSTRAP=1

log "tools"
cargo_tool fuzz "$CARGO_FUZZ_VERSION"

log "seeds"
mkdir -p "$FUZZ_DIR/corpus/decode" "$FUZZ_DIR/corpus/spec" "$FUZZ_DIR/corpus/render" "$FUZZ_DIR/corpus/jpeg"
if [[ -z "$(ls -A "$FUZZ_DIR/corpus/decode")" ]]; then
  pixelmill="${PIXELMILL_BINARY:-$TARGET_DIR/release/pixelmill}"
  [[ -x "$pixelmill" ]] || { cargo build --release --quiet -p pixelmill; pixelmill="$TARGET_DIR/release/pixelmill"; }
  photos="$(bash benches/corpus.sh)"
  seeds="$(mktemp -d)"
  for fmt in jpeg png webp gif; do
    "$pixelmill" render --out-dir "$seeds" "w=24&fmt=$fmt" "$photos"/jpeg-2560/*.jpg >/dev/null
    for file in "$seeds"/*; do mv "$file" "$FUZZ_DIR/corpus/decode/$fmt-$(basename "$file")"; done
  done
  rm -rf "$seeds"
fi
queries=("w=400" "w=300&h=200&fit=cover&gravity=smart&fmt=webp&q=75" "crop=10,10,100,100&rotate=90&flip=h"
  "blur=2.5&sharpen=1&gray=true&bg=ff000080&dpr=2&enlarge=1" "fmt=auto&progressive=true&lossless=1"
  "w=300&wm=logo&wm_pos=northwest&wm_scale=0.5&wm_opacity=0.4&wm_margin=8")
for i in "${!queries[@]}"; do printf '%s' "${queries[$i]}" >"$FUZZ_DIR/corpus/spec/seed-$i"; done
# Render seeds: 40 of the decode seeds under each example query and the hostile specs of the
# tests; the fuzzer grows the corpus from there.
if [[ -z "$(ls -A "$FUZZ_DIR/corpus/render")" ]]; then
  render_queries=("${queries[@]}" "w=16384&h=1&fit=cover&enlarge=1" "w=16384&h=1&fit=fill&enlarge=1&fmt=webp")
  for seed in $(ls "$FUZZ_DIR"/corpus/decode/* | head -40); do
    for i in "${!render_queries[@]}"; do
      { printf '%s\n' "${render_queries[$i]}"; cat "$seed"; } >"$FUZZ_DIR/corpus/render/$i-$(basename "$seed")"
    done
  done
fi
# JPEG seeds: the decode corpus's JPEGs, and progressive ones made from them.
if [[ -z "$(ls -A "$FUZZ_DIR/corpus/jpeg")" ]]; then
  pixelmill="${PIXELMILL_BINARY:-$TARGET_DIR/release/pixelmill}"
  [[ -x "$pixelmill" ]] || { cargo build --release --quiet -p pixelmill; pixelmill="$TARGET_DIR/release/pixelmill"; }
  cp "$FUZZ_DIR"/corpus/decode/jpeg-* "$FUZZ_DIR/corpus/jpeg/"
  seeds="$(mktemp -d)"
  "$pixelmill" render --out-dir "$seeds" "w=40&fmt=jpeg&progressive=true" "$FUZZ_DIR"/corpus/decode/jpeg-* >/dev/null
  for file in "$seeds"/*; do mv "$file" "$FUZZ_DIR/corpus/jpeg/progressive-$(basename "$file")"; done
  rm -rf "$seeds"
fi
# Animated GIF and WebP, TIFF, JPEG XL and AVIF, which no render writes: from the tests'
# generators, once (corpora made before they were read have none; seed3- are the JPEG XL ones,
# seed4- the AVIF ones, seed5- the HEIC ones).
if ! ls "$FUZZ_DIR/corpus/decode" | grep -q '^seed5-'; then
  cargo run --quiet -p pixelmill-tests --bin fuzz-seeds -- "$FUZZ_DIR/corpus/decode"
  pixelmill="${PIXELMILL_BINARY:-$TARGET_DIR/release/pixelmill}"
  [[ -x "$pixelmill" ]] || { cargo build --release --quiet -p pixelmill; pixelmill="$TARGET_DIR/release/pixelmill"; }
  "$pixelmill" render --out-dir "$FUZZ_DIR/corpus/decode" "fmt=webp" "$FUZZ_DIR/corpus/decode/seed2-anim.gif" >/dev/null
  for seed in "$FUZZ_DIR"/corpus/decode/seed[2345]-*; do
    for query in "w=20&fmt=gif" "w=16&h=16&fit=cover&fmt=webp&rotate=90" "fmt=png&frame=2" "anim=0&fmt=jpeg"; do
      { printf '%s\n' "$query"; cat "$seed"; } >"$FUZZ_DIR/corpus/render/$(basename "$seed")-$(printf '%s' "$query" | md5sum | cut -c1-8)"
    done
  done
fi
# Watermarked renders (the targets know a watermark `logo`) of one seed of each kind, written
# every run under fixed names, so corpora made before watermarks get them too.
wm_query="w=48&fmt=webp&wm=logo&wm_pos=center&wm_scale=1&wm_opacity=0.5"
for seed in "$FUZZ_DIR"/corpus/decode/{gif,jpeg,png,webp}-Autumn.jpg.* "$FUZZ_DIR"/corpus/decode/seed[2345]-*; do
  [[ -f "$seed" ]] || continue
  { printf '%s\n' "$wm_query"; cat "$seed"; } >"$FUZZ_DIR/corpus/render/wm-$(basename "$seed")"
done
echo "jpeg seeds: $(ls "$FUZZ_DIR/corpus/jpeg" | wc -l)"
echo "decode seeds: $(ls "$FUZZ_DIR/corpus/decode" | wc -l), spec seeds: $(ls "$FUZZ_DIR/corpus/spec" | wc -l), render seeds: $(ls "$FUZZ_DIR/corpus/render" | wc -l)"

# HEIC input (the `heic` feature) where libheif is installed, as `cargo xtask ci` does.
FEATURES=()
if pkg-config --exists libheif 2>/dev/null; then
  FEATURES=(--features heic)
  echo "heic: on (libheif $(pkg-config --modversion libheif))"
else
  echo "heic: off (no libheif-dev; HEIC seeds are refused as unsupported)"
fi

declare -a RESULTS=()
FAILED=0
fuzz() {
  local target="$1"
  cargo fuzz run "${FEATURES[@]}" --sanitizer "$FUZZ_SANITIZER" --codegen-units 16 --fuzz-dir fuzz --target-dir "$FUZZ_DIR/target-$FUZZ_SANITIZER" \
    "$target" "$FUZZ_DIR/corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -max_len=262144 -print_final_stats=1
}
for target in spec decode jpeg render; do
  checked "fuzz $target (${FUZZ_SECONDS}s)" fuzz "$target"
done

log "summary"
printf '%s\n' "${RESULTS[@]}"
echo "fuzz: $(( ${#RESULTS[@]} - FAILED )) passed, $FAILED failed"
[[ "$FAILED" == 0 ]]
