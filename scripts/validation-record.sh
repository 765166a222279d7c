#!/usr/bin/env bash
# Regenerates the validation table of docs/validation.md (between its "validation:begin" and
# "validation:end" markers) from `martelli simulate --validate --json` over configs/validate/
# (bandwidth.toml aside: it needs network namespaces, see scripts/validate-bandwidth.sh).
#
#   scripts/validation-record.sh [CALIBRATION.toml]
#
# Without a calibration file it calibrates first (about a minute) into a temporary file. The
# whole run takes several minutes and should have the machine to itself. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=target/release/martelli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

calibration=${1:-}
if [[ -z "$calibration" ]]; then
  calibration=$work/calibration.toml
  "$bin" calibrate --out "$calibration" >&2
fi
configs=(configs/validate/cpu.toml configs/validate/skewed.toml configs/validate/stream.toml
  configs/validate/waits.toml configs/validate/mixed.toml)
"$bin" simulate --validate --json --calibration "$calibration" "${configs[@]}" >"$work/rows.json"

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) logical cores"
command="martelli simulate --validate --json --calibration FILE ${configs[*]}"
python3 - "$work/rows.json" docs/validation.md "$machine" "$(date -u +%Y-%m-%d)" "$command" <<'PY'
import json, sys
rows_path, doc_path, machine, date, command = sys.argv[1:6]
rows = json.load(open(rows_path))
lines = [
    f"Machine: {machine}. Date: {date}. Command: `{command}`.",
    "",
    "| config | series | tier | cores | measured | spread | predicted | error |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
]
for r in rows:
    mark = " (!)" if abs(r["error"]) > 0.10 else ""
    lines.append(
        f"| {r['config']} | {r['series']} | {r['tier']} | {r['cores']} | {r['measured_speedup']:.3f}x "
        f"| {r['spread'] * 100:.1f}% | {r['predicted_speedup']:.3f}x | {r['error'] * 100:+.1f}%{mark} |"
    )
within = [r for r in rows if r["tier"] != "single"]
good = sum(1 for r in within if abs(r["error"]) <= 0.10)
lines += ["", f"Speed-up predictions within 10%: {good} of {len(within)}."]
doc = open(doc_path).read()
begin, end = "<!-- validation:begin -->", "<!-- validation:end -->"
head, rest = doc.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc_path, "w").write(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
print(f"docs/validation.md: {len(rows)} rows, {good} of {len(within)} within 10%")
PY
