#!/usr/bin/env bash
# Runs a fuzz target: `parse` (the component reader; the default), seeded with
# policy-gen's snapshots (both generations), or `system` (the system policy reader),
# seeded with the hand-written policy B of the tests. Extra arguments go to libFuzzer,
# e.g.
#   spec/fuzz/run.sh -runs=1000000
#   spec/fuzz/run.sh system -runs=1000000
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"

target=parse
if [ "${1:-}" = system ] || [ "${1:-}" = parse ]; then
    target=$1
    shift
fi
corpus=corpus/$target
mkdir -p "$corpus"
if [ "$target" = parse ]; then
    for gen in 2026-01 2026-04; do
        for f in ../../policy-gen/tests/snapshots/$gen/*.xml; do
            cp "$f" "$corpus/$gen-$(basename "$f")"
        done
    done
else
    cp ../tests/fixtures/system_b.xml "$corpus/system_b.xml"
fi

exec cargo +nightly fuzz run "$target" "$corpus" -- -max_len=65536 "$@"
