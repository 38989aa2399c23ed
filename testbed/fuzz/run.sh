#!/usr/bin/env bash
# Runs the `block_server` fuzz target: arbitrary requests from a subject against the
# testbed's muenblock server (every request answered once, no byte of the image or of
# the data buffer changed outside what a request names). Extra arguments go to
# libFuzzer, e.g.
#   testbed/fuzz/run.sh -runs=10000000
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"

corpus=corpus/block_server
mkdir -p "$corpus"
exec cargo +nightly fuzz run block_server "$corpus" -- -max_len=4096 "$@"
