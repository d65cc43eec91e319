#!/usr/bin/env bash
# Renders DIR/index.html (written by `scoresde figures`/`run`) in headless Chromium and checks
# that it lists every experiment of DIR (one section per */manifest.json) and that every image
# it shows loads (the page's own script counts them into <body data-images data-broken>).
set -euo pipefail
dir=${1:?usage: check_index.sh DIR}
index="$dir/index.html"
[ -f "$index" ] || { echo "check_index: $index missing" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "check_index: no chromium (scripts/setup.sh installs it)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
dom=$(timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=10000 --dump-dom "file://$(realpath "$index")" 2>/dev/null)
body=$(grep -o '<body[^>]*>' <<<"$dom" | head -1)
images=$(sed -n 's/.*data-images="\([0-9]*\)".*/\1/p' <<<"$body")
broken=$(sed -n 's/.*data-broken="\([0-9]*\)".*/\1/p' <<<"$body")
sections=$(grep -o '<section id="[^"]*"' <<<"$dom" | wc -l)
manifests=$(ls "$dir"/*/manifest.json 2>/dev/null | wc -l)
pngs=$(grep -o '<img src="[^"]*"' <<<"$dom" | wc -l)
echo "check_index: $sections sections for $manifests experiments, $images images rendered, ${broken:-?} broken"
[ -n "$images" ] && [ -n "$broken" ] || { echo "check_index: the page's script did not run" >&2; exit 1; }
[ "$broken" -eq 0 ] && [ "$images" -eq "$pngs" ] && [ "$images" -gt 0 ] && [ "$sections" -eq "$manifests" ]
