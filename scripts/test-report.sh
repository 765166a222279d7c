#!/usr/bin/env bash
# report.html in a real browser: installs Debian's chromium where it is missing (as root;
# skips with a message otherwise), writes the report of a quickstart run and of a simulate
# run, loads each headless and offline, fails on any console message or error, checks that
# the rendered page holds the run's verdict and its efficiency breakdown (heat map and
# table), and takes a screenshot whose size it checks (a blank page of that size is a few
# KB). The screenshots go to a temporary folder (kept with KEEP=1), or to docs/ with --docs.
#
#   scripts/test-report.sh [--docs]      (MARTELLI=path/to/martelli to pick the binary)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
docs=false
[ "${1:-}" = "--docs" ] && docs=true

if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "report test: skipped: chromium is missing and installing it needs root"
        exit 0
    fi
    echo "report test: installing chromium from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
martelli=${MARTELLI:-$root/target/debug/martelli}
if [ ! -x "$martelli" ]; then
    (cd "$root" && cargo build -q)
fi

work=$(mktemp -d /tmp/martelli-report.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
shots="$work/shots"
$docs && shots="$root/docs"
mkdir -p "$shots"

"$martelli" run "$root/configs/quickstart.toml" --out "$work/quickstart" >/dev/null
"$martelli" simulate "$root/configs/cpu-bound.toml" --predict-only --out "$work/simulate" >/dev/null

# Offline and quiet: no network at all, no background requests; a fresh profile each time.
browse() {
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --proxy-server=127.0.0.1:9 --user-data-dir="$work/profile-$RANDOM" \
        --enable-logging=stderr --v=0 "$@"
}

check() {
    local name=$1 dir=$2
    local page="file://$dir/report.html"
    # Self-contained: nothing to fetch, no link out (an SVG's xmlns is a name, not a load).
    if grep -Eq '(src|href)=' "$dir/report.html"; then
        echo "report test: $name: the page loads or links something: $(grep -Eo '(src|href)="[^"]*"' "$dir/report.html" | head -3)" >&2
        exit 1
    fi
    browse --window-size=1300,4400 --screenshot="$shots/report-$name.png" "$page" \
        >"$work/$name.out" 2>"$work/$name.log"
    if grep -E "CONSOLE|Uncaught|ERR_" "$work/$name.log" | grep -v "ERR_PROXY" >"$work/$name.errors"; then
        echo "report test: $name: the page logged to the console or failed a load:" >&2
        cat "$work/$name.errors" >&2
        exit 1
    fi
    browse --dump-dom "$page" >"$work/$name.dom" 2>/dev/null
    local verdict
    verdict=$(python3 -c 'import json,sys,html; print(html.escape(json.load(open(sys.argv[1]))["verdict"][:80], quote=False))' "$dir/results.json")
    if ! grep -qF "$verdict" "$work/$name.dom"; then
        echo "report test: $name: the rendered page lacks the verdict: $verdict" >&2
        exit 1
    fi
    # The breakdown: its heat map drawn and its table of factors, each cell in its band.
    for want in 'id="heatmap"' 'id="breakdown"' 'class="good"'; do
        if ! grep -qF "$want" "$work/$name.dom"; then
            echo "report test: $name: the rendered page lacks the breakdown ($want)" >&2
            exit 1
        fi
    done
    local size
    size=$(stat -c %s "$shots/report-$name.png")
    if [ "$size" -lt 60000 ]; then
        echo "report test: $name: the screenshot is $size bytes: blank?" >&2
        exit 1
    fi
    echo "report test: ok: $name: verdict and breakdown rendered, no console output, screenshot $size bytes"
}

check quickstart "$work/quickstart"
check simulate "$work/simulate"
