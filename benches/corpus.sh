#!/usr/bin/env bash
# Fetches the photo corpus for benches and corpus tests into $PIXELMILL_CORPUS
# (default ~/.cache/pixelmill-corpus): the wallpapers of Debian's plasma-workspace-wallpapers and
# gnome-backgrounds packages (real photos and artwork, 2560x1600 to 5120x2880), sorted by kind,
# plus lossless progressive re-encodings of the baseline JPEGs (jpegtran), and the 2560x1600
# originals as shipped (jpeg-2560-original: some progressive, with their own scan scripts).
# Idempotent.
set -euo pipefail
corpus=${PIXELMILL_CORPUS:-$HOME/.cache/pixelmill-corpus}
# The marker names the corpus's version: a corpus from before a set was added is fetched again.
marker=.complete-2
if [ -f "$corpus/$marker" ]; then
  echo "$corpus"
  exit 0
fi
need=()
command -v jpegtran >/dev/null || need+=(libjpeg-turbo-progs)
command -v dpkg-deb >/dev/null || need+=(dpkg)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq plasma-workspace-wallpapers gnome-backgrounds 2>/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
rm -rf "$corpus"
mkdir -p "$corpus"/{jpeg-2560,jpeg-5120,jpeg-2560-progressive,jpeg-5120-progressive,jpeg-2560-original,png,webp}
walls="$work/root/usr/share/wallpapers"
# Some originals are progressive: both sets are re-encoded losslessly from each original, so
# jpeg-N holds only baseline (sequential) files and jpeg-N-progressive only progressive ones.
for size in 2560 5120; do
  pattern=$([ $size = 2560 ] && echo 2560x1600 || echo 5120x2880)
  for f in "$walls"/*/contents/images/$pattern.jpg; do
    name=$(basename "$(dirname "$(dirname "$(dirname "$f")")")")
    jpegtran -copy all -outfile "$corpus/jpeg-$size/$name.jpg" "$f"
    jpegtran -copy all -progressive -outfile "$corpus/jpeg-$size-progressive/$name.jpg" "$f"
  done
done
for f in "$walls"/*/contents/images/2560x1600.jpg; do
  cp "$f" "$corpus/jpeg-2560-original/$(basename "$(dirname "$(dirname "$(dirname "$f")")")").jpg"
done
for f in "$walls"/*/contents/images/*.png; do
  name=$(basename "$(dirname "$(dirname "$(dirname "$f")")")")
  cp "$f" "$corpus/png/$name-$(basename "$f")"
done
cp "$work"/root/usr/share/backgrounds/gnome/*.webp "$corpus/webp/"
touch "$corpus/$marker"
echo "$corpus"
