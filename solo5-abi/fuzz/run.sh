#!/usr/bin/env bash
# Seeds the corpus with the notes of Solo5's own test images (built by
# scripts/solo5-build.sh) and runs the `notes` fuzz target. Extra arguments go to
# libFuzzer, e.g.
#   solo5-abi/fuzz/run.sh -runs=200000
# Needs nightly, cargo-fuzz (`cargo install cargo-fuzz`) and binutils (objcopy).
set -euo pipefail
cd "$(dirname "$0")"

tests=$(../../scripts/solo5-build.sh | awk '$1 == "solo5-tests" { print $2 }')
corpus=corpus/notes
mkdir -p "$corpus"
for t in hello net_2if mft_maxdevices; do
    img=$tests/test_$t/test_$t.muen
    abi=$corpus/${t}_abi
    mft=$corpus/${t}_mft
    # Each note on its own, as one PT_NOTE segment.
    objcopy -O binary --only-section=.note.solo5.abi "$img" "$abi"
    objcopy -O binary --only-section=.note.solo5.manifest "$img" "$mft"
    # Both as two segments (count byte, 16-bit length of the first, both notes).
    len=$(stat -c %s "$abi")
    {
        printf '\x02'
        printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))"
        cat "$abi" "$mft"
    } >"$corpus/${t}_segments"
    # A small ELF image holding only the note sections and their program headers.
    objcopy --strip-all --only-section=.note.solo5.manifest --only-section=.note.solo5.abi \
        --only-section=.note.solo5.not_openbsd "$img" "$corpus/${t}_elf"
done

exec cargo +nightly fuzz run notes "$corpus" -- -max_len=16384 "$@"
