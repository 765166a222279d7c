#!/usr/bin/env bash
# Regenerates a validation table of docs/validation.md from `martelli simulate --validate
# --json` output, never by hand.
#
#   scripts/validation-record.sh [CALIBRATION.toml]   # measure here: configs/validate/*.toml
#   scripts/validation-record.sh --wide DIR [NAME]    # a 16-core machine's record, measured there
#
# The first form measures configs/validate/ (bandwidth.toml aside: it needs network namespaces,
# see scripts/validate-bandwidth.sh) on this machine, calibrating first (about a minute) unless a
# calibration file is given, and rewrites the table between the "validation:begin" and
# "validation:end" markers. The second reads a folder that scripts/validation-measure.sh wrote
# on a machine of 16 cores or more from configs/validate/wide/ and rewrites the table between
# the "validation-wide:begin" and "validation-wide:end" markers (with NAME,
# "validation-wide-NAME:...", for a record of its own). Measuring takes several
# minutes and should have the machine to itself. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

section=validation
if [[ "${1:-}" == --wide ]]; then
  section=validation-wide${3:+-$3}
  from=${2:?usage: validation-record.sh --wide DIR [NAME]}
else
  cargo build --release --quiet
  from=$(mktemp -d)
  trap 'rm -rf "$from"' EXIT
  calibration=()
  [[ -n "${1:-}" ]] && calibration=(--calibration "$1")
  MARTELLI=target/release/martelli scripts/validation-measure.sh "$from" "${calibration[@]}" \
    configs/validate/cpu.toml configs/validate/skewed.toml configs/validate/stream.toml \
    configs/validate/replay.toml \
    configs/validate/waits.toml configs/validate/mixed.toml
fi

python3 - "$from" docs/validation.md "$section" <<'PY'
import json, sys
folder, doc_path, section = sys.argv[1:4]
read = lambda name: open(f"{folder}/{name}").read().strip()
rows = json.loads(read("rows.json"))
lines = [
    f"Machine: {read('machine.txt')}. Date: {read('date.txt')}. Command: `{read('command.txt')}`.",
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
begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
if begin not in doc:
    doc += f"\n{begin}\n{end}\n"
head, rest = doc.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc_path, "w").write(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
print(f"docs/validation.md ({section}): {len(rows)} rows, {good} of {len(within)} within 10%")
PY
