#!/usr/bin/env bash
# Runs every fuzz target of the project for RUNS inputs each (default 20000), seeded
# as its own run script seeds it, with one target directory for all of them
# (target/fuzz), so that what the crates share is built once:
#
#   sinfo/fuzz       check         muen-sinfo's checked page views
#   spec/fuzz        parse, system muen-spec's component and system policy readers
#   channels/fuzz    reader        muen-channel's reader against a hostile writer
#   solo5-abi/fuzz   notes         solo5-abi's ELF notes (seeds: Solo5's test images)
#   testbed/fuzz     block_server  the testbed's muenblock server
#
#   scripts/fuzz.sh [RUNS]
#
# Needs nightly and cargo-fuzz (scripts/setup.sh installs both). A finding stops the
# script with libFuzzer's report and the crashing input under <crate>/fuzz/artifacts.
# The long runs (10 million inputs and more) and their results are in each crate's
# document (docs/sinfo.md, docs/conventions.md, docs/channels.md, docs/solo5.md,
# docs/testbed.md).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20000}
export CARGO_TARGET_DIR=$PWD/target/fuzz

run() {
    local what=$1
    shift
    local log=$CARGO_TARGET_DIR/${what//[ \/]/-}.log
    local start=$SECONDS
    printf '\n--> %s\n' "$what"
    mkdir -p "$CARGO_TARGET_DIR"
    if ! "$@" -runs="$runs" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $what failed (log: $log)"
        exit 1
    fi
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    echo "$what: $runs runs, $((SECONDS - start)) s with its build"
}

run "sinfo/fuzz check" sinfo/fuzz/run.sh
run "spec/fuzz parse" spec/fuzz/run.sh parse
run "spec/fuzz system" spec/fuzz/run.sh system
run "channels/fuzz reader" sh -c 'cd channels/fuzz && exec cargo +nightly fuzz run reader -- "$@"' fuzz
run "solo5-abi/fuzz notes" solo5-abi/fuzz/run.sh
run "testbed/fuzz block_server" testbed/fuzz/run.sh
