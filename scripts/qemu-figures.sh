#!/usr/bin/env bash
# Time from starting `muen-testbed run` to the subject's first log line on its stdout,
# for examples/hello: in QEMU with KVM and with TCG, and hosted for comparison
# (docs/qemu.md, "Figures"). Everything is built first; the runs use the prebuilt
# images (--exec, MUEN_TESTBED_BOOT_STAGE), so that no cargo invocation is timed.
#
#   scripts/qemu-figures.sh [RUNS]     (default 15 runs each; median, min, max)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}

cargo build -q --release -p muen-testbed
cargo build -q --release -p hello --target x86_64-unknown-none
cargo build -q --release -p hello
cargo build -q --release -p muen-qemu-boot --target x86_64-unknown-none
export MUEN_TESTBED_BOOT_STAGE=$PWD/target/x86_64-unknown-none/release/muen-qemu-boot
testbed=target/release/muen-testbed

# Milliseconds from the start of "$@" to its first line on stdout.
first_line_ms() {
    local start line
    start=$(date +%s%N)
    "$@" 2>/dev/null | {
        read -r line
        echo $((($(date +%s%N) - start) / 1000000))
        cat >/dev/null
    }
}

figure() {
    local name=$1
    shift
    local all=()
    for _ in $(seq "$runs"); do
        all+=("$(first_line_ms "$@")")
    done
    mapfile -t all < <(printf '%s\n' "${all[@]}" | sort -n)
    printf '%-34s median %4d ms  (min %d, max %d, %d runs)\n' "$name" \
        "${all[$((runs / 2))]}" "${all[0]}" "${all[$((runs - 1))]}" "$runs"
}

if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    figure "QEMU, KVM: start -> first line" \
        "$testbed" run --qemu --accel kvm --exec target/x86_64-unknown-none/release/hello examples/hello
else
    echo "QEMU, KVM: SKIPPED (/dev/kvm is missing or not usable)"
fi
figure "QEMU, TCG: start -> first line" \
    "$testbed" run --qemu --accel tcg --exec target/x86_64-unknown-none/release/hello examples/hello
figure "hosted: start -> first line" \
    "$testbed" run --exec target/release/hello examples/hello
