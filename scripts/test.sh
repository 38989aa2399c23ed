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

step "rustdoc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Solo5's test programs (its tenders, elftool and the `muen` images), built from the
# pinned tree ../shared/solo5 in a copy under target/solo5 (cached by a stamp of the
# source): solo5-abi, policy-gen and muen-testbed test against them.
step "Solo5: build its test programs (scripts/solo5-build.sh)"
./scripts/solo5-build.sh

# solo5-muen (Solo5's Muen bindings on the runtime) as the object that replaces Solo5's
# solo5_muen.o: its C side exists only for x86_64-unknown-none, so the workspace's
# clippy run on the host does not see it. The acceptance table below links Solo5's test
# objects with it (SOLO5_MUEN_OBJECT).
step "solo5-muen: lints for x86_64-unknown-none, solo5_muen.o (both ABI pairs)"
cargo clippy -p solo5-muen --target x86_64-unknown-none -- -D warnings
cargo clippy -p solo5-muen --target x86_64-unknown-none --features abi3 -- -D warnings
SOLO5_MUEN_ABI3_OBJECT="$(./scripts/solo5-muen-build.sh --features abi3 "$PWD/target/solo5-muen/abi3/solo5_muen.o")"
SOLO5_MUEN_OBJECT="$(./scripts/solo5-muen-build.sh)"
export SOLO5_MUEN_OBJECT SOLO5_MUEN_ABI3_OBJECT
size "$SOLO5_MUEN_OBJECT"

step "host tests"
# policy-gen's tests validate every generated policy with xmllint (from setup.sh); they
# fail, never skip, without it.
command -v xmllint >/dev/null || { echo "xmllint is missing (Debian: libxml2-utils)"; exit 1; }
skip=()
# muen-testbed's `netns_*` tests need root (network namespaces, TAP interfaces; CI is
# root). Run by hand as another user they fail with a message saying so; here they are
# skipped with a visible line instead.
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED: muen-testbed's netns_* tests (network namespaces and TAP need root)"
    skip+=(--skip netns_)
fi
# muen-testbed's QEMU-mode tests (docs/qemu.md) boot the real images with TCG always
# and with KVM where /dev/kvm is usable (CI has it); the `qemu_kvm` ones fail saying so
# without it (they also check that it answers), so they are skipped here with a visible
# line.
if ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "SKIPPED: muen-testbed's qemu_kvm tests (/dev/kvm is missing or not usable)"
    skip+=(--skip qemu_kvm)
fi
# The Solo5 acceptance table and the tests that run Muen's tool chain (names with
# `muens_tool_chain`) run in their own steps below, where their output is shown.
# The examples' end-to-end tests on a system made by Muen's tool chain run here
# (muen-testbed's tests/system.rs and tests/qemu_system.rs, each making its system with
# pipeline.sh once), among them the guestbook's: `netns_system_guestbook_*` and
# `netns_qemu_tcg_system_guestbook_*` (web and vault, POST and GET with curl, vault
# reset by SIGUSR1) and `system_vault_refuses_what_a_compromised_web_forges_*`.
cargo test --workspace -- "${skip[@]}" --skip muens_tool_chain --skip netns_solo5_ \
    --skip qemu_kvm_solo5_acceptance_table

# Muen's own policy tools (../shared/muen, both generations): every step of every
# pipeline.sh run is printed, with "Successfully validated" from mucfgvalidate. A
# missing or unusable ../shared/muen fails these tests, naming what is missing.
step "Muen's tool chain: the examples with policy-gen's system additions (with and without ELFs), mugensinfo's pages against the specifications and the testbed's pages"
cargo test -p muen-testbed --test muen_pipeline -- --nocapture muens_tool_chain
step "Muen's tool chain: every system snippet of docs/muen.md"
cargo test -p policy-gen --test system_snippet -- --nocapture muens_tool_chain
step "Muen's tool chain: Solo5 unikernels' specifications (both generations; solo5-check, mugensolo5), the testbed's boot info and page against Muen's"
cargo test -p policy-gen --test solo5 -- --nocapture muens_tool_chain
cargo test -p muen-testbed --test solo5 -- --nocapture muens_tool_chain

# Solo5's own test programs in QEMU mode (TCG), judged by Solo5's tests.bats: the test
# prints a table of every program with its result (docs/solo5.md). The network ones
# run in a private namespace, so the test needs root.
step "Solo5's test programs on the testbed (QEMU, TCG): the acceptance table, Solo5's C bindings and solo5-muen"
if [ "$(id -u)" -eq 0 ]; then
    cargo test -p muen-testbed --test solo5 netns_solo5_qemu_tcg_acceptance_table -- --nocapture
else
    echo "SKIPPED: the Solo5 acceptance table (its network tests need root)"
fi
step "Solo5's test programs on the testbed (QEMU, KVM): the same table without the network programs"
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    cargo test -p muen-testbed --test solo5 qemu_kvm_solo5_acceptance_table -- --nocapture
else
    echo "SKIPPED: the Solo5 acceptance table under KVM (/dev/kvm is missing or not usable)"
fi

step "no_std builds for x86_64-unknown-none"
cargo build --target x86_64-unknown-none -p muen-abi
cargo build --target x86_64-unknown-none -p muen-testbed-abi
cargo build --target x86_64-unknown-none -p muen-device
cargo build --target x86_64-unknown-none -p muen-channel
cargo build --target x86_64-unknown-none -p solo5-abi
cargo build --target x86_64-unknown-none -p solo5-abi --features elf,builder
cargo build --target x86_64-unknown-none -p muen-sinfo
cargo build --target x86_64-unknown-none -p muen-sinfo --features builder
# The runtime, with and without its optional features (also links its test subject
# with the runtime's linker script).
cargo build --target x86_64-unknown-none -p muen-subject
cargo build --target x86_64-unknown-none -p muen-subject --features alloc,smoltcp

step "QEMU boot stage: firmware build for x86_64-unknown-none, lints, image layout"
# The firmware (qemu-boot/src/firmware.rs) exists only for the Muen target, so the
# workspace's clippy run on the host does not see it.
cargo clippy -p muen-qemu-boot --target x86_64-unknown-none -- -D warnings
cargo build -p muen-qemu-boot --target x86_64-unknown-none --release
boot_elf=target/x86_64-unknown-none/release/muen-qemu-boot
entry=$(readelf -h "$boot_elf" | awk '/Entry point address/ { print $4 }')
[ "$entry" = "0x11000" ] || { echo "$boot_elf: entry $entry, expected 0x11000"; exit 1; }
readelf -lW "$boot_elf" | grep -q 'LOAD .* 0x00000000fffff000 0x00000000fffff000 0x001000 0x001000' ||
    { echo "$boot_elf: no 4 KiB ROM segment at 0xfffff000"; exit 1; }
size "$boot_elf"

step "miri: muen-channel (unit tests, two-thread race check)"
cargo +nightly miri test -p muen-channel

# The unsafe code of muen-sinfo (volatile views of the runtime pages) is in its unit
# tests; the integration tests also pass under Miri but add minutes (see docs/sinfo.md).
step "miri: muen-sinfo unit tests"
cargo +nightly miri test -p muen-sinfo --lib

# The unsafe code of solo5-muen's host-testable part: the boot info and the manifest
# read from raw addresses, TLS blocks written through them. (Its property tests need
# the file system, which Miri's isolation refuses, and are pure arithmetic; the heap
# and console tests add half a minute of sinfo page building and no unsafe code of
# their own.)
step "miri: solo5-muen (boot info, manifest, TLS)"
MIRIFLAGS="-Zmiri-permissive-provenance -Zmiri-ignore-leaks" \
    cargo +nightly miri test -p solo5-muen --lib -- tls:: manifest:: \
    boot::tests::the_record boot::tests::a_wrong_rdi --skip proptest --skip tp_offset_is

step "stress: muen-channel, writer and reader threads, 22 million elements (release)"
cargo test --release -p muen-channel --test stress -- --ignored --nocapture

# Every parser of foreign bytes has a fuzz target; here each runs a short, fixed number
# of inputs (seconds each, after its build); the long runs are in the crates' documents
# (scripts/fuzz.sh names them).
step "fuzz: every target, 20 000 inputs each (cargo-fuzz, nightly)"
./scripts/fuzz.sh 20000

# Miri needs seconds per test here (channels of several KiB), so it runs the tests that
# cover the crate's unsafe code: regions built from sinfo addresses, the timed event and
# time info views, the logger. The tests leak their memory on purpose (sinfo pages are
# 'static), and sinfo addresses are integers by nature (permissive provenance).
step "miri: muen-subject (drivers on shared memory, idle loop, log)"
MIRIFLAGS="-Zmiri-permissive-provenance -Zmiri-ignore-leaks" \
    cargo +nightly miri test -p muen-subject --lib -- net::tests::frames log:: \
    runtime::tests::poll_sleeps runtime::tests::wall runtime::tests::a_device platform:: \
    exit:: entry::

step "examples for Muen: static ELFs at the entry address, accepted by policy-gen, sizes"
for app in hello echo blockstore web vault; do
    cargo build -p "$app" --target x86_64-unknown-none --release
    elf=target/x86_64-unknown-none/release/$app
    readelf -h "$elf" | grep -Eq 'Type:[[:space:]]+EXEC' ||
        { echo "$elf is not a static executable (ET_EXEC)"; exit 1; }
    entry=$(readelf -h "$elf" | awk '/Entry point address/ { print $4 }')
    [ "$entry" = "0x200000" ] || { echo "$elf: entry $entry, expected 0x200000"; exit 1; }
    for gen in 2026-04 2026-01; do
        cargo run -q -p policy-gen -- --muen-tools "$gen" --elf "$elf" "examples/$app/app.toml" |
            xmllint --noout --schema "../shared/muen/$gen/schema/component.xsd" -
    done
    size "$elf"
done

step "policy-gen on the example manifests, validated with the schema of each generation of Muen's tools"
for manifest in examples/*/app.toml; do
    for gen in 2026-04 2026-01; do
        cargo run -q -p policy-gen -- --muen-tools "$gen" "$manifest" |
            xmllint --noout --schema "../shared/muen/$gen/schema/component.xsd" -
    done
done

# The device ABI's compliance suite already ran above (debug, 10 000 random operations
# per implementation); here the random sequences run long, against every implementation:
# the reference devices (muen-device-compliance's tests/reference.rs), the runtime's
# drivers with muen-sim's in-memory peers (muen-subject's tests/compliance.rs) and with
# the testbed's bridge and block server (muen-testbed's tests/compliance.rs). Each
# prints its seed and operation count.
step "compliance: random operation sequences, 400 x 1000 per implementation (release)"
COMPLIANCE_CASES=400 COMPLIANCE_OPS=1000 \
    cargo test --release -p muen-device-compliance -p muen-subject -p muen-testbed \
    --test reference --test compliance -- random --nocapture

# The README's first command, as written (and its echo variant, which needs root).
step "README: ./scripts/demo.sh"
./scripts/demo.sh
if [ "$(id -u)" -eq 0 ]; then
    step "README: ./scripts/demo.sh echo"
    ./scripts/demo.sh echo
else
    echo "SKIPPED: ./scripts/demo.sh echo (network namespaces need root)"
fi

step "muen-channel: against Solo5's C channel (release; every ratio row, the two-thread ones per latency mode)"
nice -n -20 cargo bench -p muen-channel --bench versus_solo5

step "muen-testbed: data path benchmark (release; network part needs root)"
cargo bench -p muen-testbed --bench datapath

echo
echo "all tests passed"
