#!/usr/bin/env bash
# Seeds the corpus with policy-gen's snapshots (both generations) and runs the `parse`
# fuzz target. Extra arguments go to libFuzzer, e.g.
#   spec/fuzz/run.sh -runs=1000000
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"

corpus=corpus/parse
mkdir -p "$corpus"
for gen in 2026-01 2026-04; do
    for f in ../../policy-gen/tests/snapshots/$gen/*.xml; do
        cp "$f" "$corpus/$gen-$(basename "$f")"
    done
done

exec cargo +nightly fuzz run parse "$corpus" -- -max_len=65536 "$@"
