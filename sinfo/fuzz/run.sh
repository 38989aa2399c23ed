#!/usr/bin/env bash
# Seeds the corpus with Muen's test pages (trimmed to their used records, plus v5
# variants) and runs the `check` fuzz target. Extra arguments go to libFuzzer, e.g.
#   sinfo/fuzz/run.sh -runs=10000000
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"

data=../../../shared/testdata/sinfo-v4
corpus=corpus/check
mkdir -p "$corpus"
# Header (80 bytes) + 128 bytes per counted record.
head -c 1744 "$data/lnx_sinfo" >"$corpus/lnx_sinfo"
head -c 1616 "$data/subject_info" >"$corpus/subject_info"
head -c 1360 "$data/null_info" >"$corpus/null_info"
# The same lnx page as v5: version byte 5, count moved from bytes 77-78 to 78-79.
{
    head -c 7 "$data/lnx_sinfo"
    printf '\x05'
    head -c 77 "$data/lnx_sinfo" | tail -c 69
    printf '\x00\x0d\x00'
    head -c 1744 "$data/lnx_sinfo" | tail -c 1664
} >"$corpus/lnx_sinfo_v5"

exec cargo +nightly fuzz run check "$corpus" -- -max_len=32720 "$@"
