#!/usr/bin/env bash
# Side by side, one thread each, same files, one run: `pixelmill render --threads 1` against sharp
# (libvips) through ../shared/peers/sharp-batch.js, on the thumbnail workload (to 400 px wide,
# JPEG q80 and WebP q80). Prints per-image mean times of 5 renders after a warm-up, their ratio,
# and the peak RSS of one 5120x2880 render.
# usage: benches/vs-sharp.sh [--quick]     (--quick: three files per set)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${PIXELMILL_SHARED:-$repo/../shared}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
quick=${1:-}
corpus=$(bash "$repo/benches/corpus.sh")
bash "$shared/peers/install.sh" >&2
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --package pixelmill --manifest-path "$repo/Cargo.toml"
pixelmill="$CARGO_TARGET_DIR/release/pixelmill"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
for fmt in jpeg webp; do
  for set in jpeg-2560 jpeg-2560-progressive jpeg-5120 jpeg-5120-progressive; do
    files=("$corpus/$set"/*.jpg)
    [ "$quick" = "--quick" ] && files=("${files[@]:0:3}")
    node "$shared/peers/sharp-batch.js" --width 400 --format "$fmt" --quality 80 --repeat 5 --threads 1 "${files[@]}" > "$work/sharp.jsonl"
    "$pixelmill" render --threads 1 --repeat 5 --json --out-dir "$work/out" "w=400&fmt=$fmt&q=80" "${files[@]}" > "$work/pixelmill.jsonl"
    python3 - "$fmt" "$set" "$work/sharp.jsonl" "$work/pixelmill.jsonl" <<'PY'
import json, sys
fmt, name, sharp_path, mill_path = sys.argv[1:]
sharp = {r["file"]: r for r in map(json.loads, open(sharp_path)) if not r.get("summary")}
mill = {r["file"]: r for r in map(json.loads, open(mill_path))}
print(f"\n{fmt} output, {name}")
print(f"{'file':<22}{'sharp ms':>10}{'pixelmill ms':>14}{'ratio':>8}{'sharp B':>9}{'pixelmill B':>13}")
ratios = []
for f in sorted(sharp):
    s, m = sharp[f], mill[f]
    ratio = m["ms"] / s["ms"]
    ratios.append(ratio)
    print(f"{f:<22}{s['ms']:>10.2f}{m['ms']:>14.2f}{ratio:>8.2f}{s['bytes']:>9}{m['bytes']:>13}")
mean_s = sum(sharp[f]["ms"] for f in sharp) / len(sharp)
mean_m = sum(mill[f]["ms"] for f in sharp) / len(sharp)
print(f"{'mean':<22}{mean_s:>10.2f}{mean_m:>14.2f}{mean_m / mean_s:>8.2f}")
PY
  done
done
big=$(ls "$corpus/jpeg-5120"/*.jpg | head -1)
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
echo
echo "peak RSS, one 5120x2880 JPEG to 400 px JPEG: pixelmill $(( $(rss "$pixelmill" render --threads 1 --out-dir "$work/out" 'w=400&fmt=jpeg' "$big") / 1024 )) MiB"
echo "peak RSS, one 5120x2880 JPEG at full size to JPEG: pixelmill $(( $(rss "$pixelmill" render --threads 1 --out-dir "$work/out" 'fmt=jpeg' "$big") / 1024 )) MiB"
echo "peak RSS, same 400 px render in sharp-batch: $(( $(rss node "$shared/peers/sharp-batch.js" --width 400 --repeat 1 --out "$work/out" "$big") / 1024 )) MiB"
