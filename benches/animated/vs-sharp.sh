#!/usr/bin/env bash
# Animations side by side, one thread each, same files, one run: `pixelmill render --threads 1`
# against sharp with `animated: true`. The inputs are made by sharp from the photo corpus
# (benches/corpus.sh): an animated GIF and an animated WebP of 48 frames of 480x270, each
# rendered to 240 px wide in its own format, every frame. Prints the mean time a whole
# animation takes (5 renders after a warm-up), the ratio, the bytes and the frames out.
# usage: benches/animated/vs-sharp.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
shared=${PIXELMILL_SHARED:-$repo/../shared}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
corpus=$(bash "$repo/benches/corpus.sh")
bash "$shared/peers/install.sh" >&2
cargo build --release --quiet --package pixelmill --manifest-path "$repo/Cargo.toml"
pixelmill="$CARGO_TARGET_DIR/release/pixelmill"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
script="$repo/benches/animated/sharp-animated.js"

node "$script" make "$work" 48 "$corpus"/jpeg-2560/*.jpg
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "inputs: $(cd "$work" && ls -l animation.gif animation.webp | awk '{print $9, $5, "bytes"}' | paste -sd ', ')"
for fmt in gif webp; do
  node "$script" bench 240 "$fmt" "$work/animation.$fmt" > "$work/sharp.jsonl"
  "$pixelmill" render --threads 1 --repeat 5 --json --out-dir "$work/out" "w=240&fmt=$fmt&q=80" "$work/animation.$fmt" > "$work/pixelmill.jsonl"
  frames=$(node "$script" pages "$work/out/animation.$fmt.$fmt")
  python3 - "$fmt" "$work/sharp.jsonl" "$work/pixelmill.jsonl" "$frames" <<'PY'
import json, sys
fmt, sharp_path, mill_path, frames = sys.argv[1:]
s = json.loads(open(sharp_path).readline())
m = json.loads(open(mill_path).readline())
print(f"\n{fmt}: 48 frames of 480x270 to 240 px wide, every frame")
print(f"{'':<12}{'ms':>10}{'bytes':>10}{'frames':>8}")
print(f"{'sharp':<12}{s['ms']:>10.2f}{s['bytes']:>10}{s['pages']:>8}")
print(f"{'pixelmill':<12}{m['ms']:>10.2f}{m['bytes']:>10}{frames:>8}")
print(f"ratio (pixelmill / sharp): {m['ms'] / s['ms']:.2f}")
PY
done
