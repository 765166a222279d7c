#!/usr/bin/env bash
# Measures one validation record into a folder, for scripts/validation-record.sh to turn into
# docs/validation.md's table (also on a machine without cargo: set MARTELLI to a built binary).
#
#   MARTELLI=target/release/martelli scripts/validation-measure.sh OUT [--calibration FILE] CONFIGS...
#
# Writes OUT/rows.json (`simulate --validate --json`), OUT/calibration.toml (calibrates first
# unless --calibration is given), OUT/machine.txt, OUT/date.txt and OUT/command.txt.
set -euo pipefail
bin=${MARTELLI:-target/release/martelli}
out=${1:?usage: validation-measure.sh OUT [--calibration FILE] CONFIGS...}
shift
mkdir -p "$out"
if [[ "${1:-}" == --calibration ]]; then
  cp "$2" "$out/calibration.toml"
  shift 2
else
  "$bin" calibrate --out "$out/calibration.toml" >&2
fi
(($# > 0)) || { echo "validation-measure.sh: no configs given" >&2; exit 2; }
"$bin" simulate --validate --json --calibration "$out/calibration.toml" "$@" >"$out/rows.json"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) logical cores" >"$out/machine.txt"
date -u +%Y-%m-%d >"$out/date.txt"
echo "martelli simulate --validate --json --calibration FILE $*" >"$out/command.txt"
