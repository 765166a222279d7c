#!/usr/bin/env bash
# Coverage-guided fuzzing of what martelli reads from files and from the network:
#   config                parse + validate of a config file
#   worker_receives       every message a worker decodes (run stream, handshake, status)
#   coordinator_receives  every message a coordinator decodes (results, replies, join offers)
#   fit_csv               the CSV reader and the fits of `martelli fit`
# Needs the nightly toolchain and cargo-fuzz (installed here when missing). Runs each target
# for SECONDS (default 60) from the committed corpus (fuzz/corpus/TARGET), keeps what the
# fuzzer adds there, and prints executions and findings per target. Crashes land in
# fuzz/artifacts/TARGET; `cargo test` replays the corpus (crates/fuzz/tests/corpus.rs).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config worker_receives coordinator_receives fit_csv)

rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
[ -d fuzz/corpus/config ] || cargo run -q -p martelli-fuzz --example seed

status=0
for target in "${targets[@]}"; do
    log="$(mktemp)"
    if cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        outcome="no findings"
        # Keep the smallest corpus that covers what the run reached.
        cargo +nightly fuzz cmin "$target" "fuzz/corpus/$target" >>"$log" 2>&1 || true
    elif grep -q 'failed to build' "$log"; then
        outcome="DID NOT BUILD (see $log)"
        status=1
    else
        outcome="FINDING (see fuzz/artifacts/$target and $log)"
        status=1
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | head -1 | grep -o '[0-9]*$' || echo '?')"
    corpus="$(ls "fuzz/corpus/$target" | wc -l)"
    echo "$target: $runs executions in ${seconds}s, corpus $corpus inputs, $outcome"
    case "$outcome" in "no findings") rm -f "$log" ;; esac
done
exit "$status"
