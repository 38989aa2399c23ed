#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit/integration tests on the host,
# no_std builds for the Muen target, and Miri on the unsafe cores.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "host tests"
cargo test --workspace

step "no_std builds for x86_64-unknown-none"
cargo build --target x86_64-unknown-none -p muen-app
cargo build --target x86_64-unknown-none -p muen-sinfo
cargo build --target x86_64-unknown-none -p muen-sinfo --features builder

# The unsafe code of muen-sinfo (volatile views of the runtime pages) is in its unit
# tests; the integration tests also pass under Miri but add minutes (see docs/sinfo.md).
step "miri: muen-sinfo unit tests"
cargo +nightly miri test -p muen-sinfo --lib

echo
echo "all tests passed"
