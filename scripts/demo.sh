#!/usr/bin/env bash
# Builds an example app for Muen, generates its Muen policy, and runs it on the
# testbed, showing its log.
#
#   scripts/demo.sh              hello: greets, shows its clocks and resources, exits
#   scripts/demo.sh echo         echo in a private network namespace: ping, UDP, curl
#   scripts/demo.sh blockstore   blockstore booted three times on a fresh disk image
#   scripts/demo.sh bench        echo (release build): ping round trips and HTTP
#                                requests per second with ab (and wrk, if installed)
#
# Run as root on Linux (echo and bench create a network namespace; set-up installs
# Debian packages). Network traffic stays inside the namespace, which is removed at
# the end: the subject is 10.0.0.2/24 behind TAP interface tap0 (10.0.0.1/24).
set -euo pipefail
cd "$(dirname "$0")/.."

app=${1:-hello}
case "$app" in
    hello | echo | blockstore | bench) ;;
    *) echo "usage: $0 [hello|echo|blockstore|bench]" >&2; exit 2 ;;
esac
[ "$app" = bench ] && elf_app=echo || elf_app=$app

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$app" = echo ] || [ "$app" = bench ]; then
    [ "$(id -u)" -eq 0 ] || { echo "$0 $app: needs root (network namespace, TAP interface)" >&2; exit 1; }
fi

step "set-up: scripts/setup.sh --demo (Rust target x86_64-unknown-none, a few Debian packages)"
./scripts/setup.sh --demo

step "build $elf_app for Muen: cargo build -p $elf_app --target x86_64-unknown-none --release"
cargo build -q -p "$elf_app" --target x86_64-unknown-none --release
elf=target/x86_64-unknown-none/release/$elf_app
mkdir -p target/demo
policy=target/demo/$elf_app.xml
step "generate its Muen component policy: policy-gen --elf $elf examples/$elf_app/app.toml > $policy"
cargo run -q -p policy-gen -- --elf "$elf" "examples/$elf_app/app.toml" > "$policy"
# policy-gen writes for the newest Muen tools (--muen-tools 2026-04) by default.
schema=../shared/muen/2026-04/schema/component.xsd
if [ -f "$schema" ]; then
    xmllint --noout --schema "$schema" "$policy"
else
    echo "($schema not found: schema check skipped)"
fi
size "$elf"
echo "docs/muen.md explains how to put $elf and $policy into a Muen system."

cargo build -q -p muen-testbed
testbed=target/debug/muen-testbed

case "$app" in
hello)
    step "run hello on the testbed: cargo run -p muen-testbed -- run examples/hello"
    cargo run -q -p muen-testbed -- run examples/hello
    ;;

blockstore)
    image=target/demo/store.img
    rm -f "$image"
    truncate -s 1M "$image"
    for boot in 1 2 3; do
        step "boot $boot: muen-testbed run examples/blockstore --disk storage=$image"
        "$testbed" run examples/blockstore --disk "storage=$image"
    done
    ;;

echo | bench)
    release=()
    [ "$app" = bench ] && release=(--release)
    # Build the subject for the host now: inside the namespace cargo has no network.
    cargo build -q -p echo "${release[@]}"
    ns=muen-demo-$$
    testbed_pid=
    cleanup() {
        if [ -n "$testbed_pid" ]; then
            kill "$testbed_pid" 2>/dev/null || true
            wait "$testbed_pid" 2>/dev/null || true
        fi
        ip netns del "$ns" 2>/dev/null || true
    }
    trap cleanup EXIT
    step "network namespace $ns: TAP interface tap0 with 10.0.0.1/24"
    ip netns add "$ns"
    in_ns() { ip netns exec "$ns" "$@"; }
    in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    in_ns ip link set lo up
    in_ns ip tuntap add dev tap0 mode tap
    in_ns ip addr add 10.0.0.1/24 dev tap0
    in_ns ip link set tap0 up

    step "run echo on the testbed in $ns: muen-testbed run examples/echo ${release[*]} --tap service0=tap0"
    # `ip netns exec` execs the testbed: $! is the testbed's pid.
    ip netns exec "$ns" env CARGO_NET_OFFLINE=true \
        "$testbed" run examples/echo "${release[@]}" --tap service0=tap0 &
    testbed_pid=$!
    for _ in $(seq 60); do
        in_ns ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1 && break
        kill -0 "$testbed_pid" 2>/dev/null || { echo "the testbed stopped" >&2; exit 1; }
    done

    if [ "$app" = echo ]; then
        step "ping -c 5 10.0.0.2"
        in_ns ping -c 5 -i 0.2 10.0.0.2
        step "UDP echo on port 7 (bash's /dev/udp)"
        # One read of up to 2 KiB takes one whole datagram.
        in_ns bash -c 'exec 3<>/dev/udp/10.0.0.2/7; printf "hello, echo" >&3
            printf "sent \"hello, echo\", got back \"%s\"\n" "$(timeout 2 dd bs=2048 count=1 status=none <&3)"'
        step "curl http://10.0.0.2/"
        in_ns curl -sS --max-time 10 http://10.0.0.2/
    else
        step "ping -q -c 100 -i 0.01 10.0.0.2"
        in_ns ping -q -c 100 -i 0.01 10.0.0.2
        step "ab -q -l -n 20000 -c 8 http://10.0.0.2/"
        in_ns ab -q -l -n 20000 -c 8 http://10.0.0.2/ | grep -E 'Complete requests|Failed requests|Requests per second|Time per request'
        step "ab -q -l -n 5000 -c 1 http://10.0.0.2/"
        in_ns ab -q -l -n 5000 -c 1 http://10.0.0.2/ | grep -E 'Complete requests|Failed requests|Requests per second|Time per request'
        if command -v wrk >/dev/null; then
            step "wrk -t 2 -c 8 -d 10s http://10.0.0.2/"
            in_ns wrk -t 2 -c 8 -d 10s http://10.0.0.2/
        fi
        step "the status page after the run"
        in_ns curl -sS --max-time 10 http://10.0.0.2/
    fi
    step "stop the testbed (SIGTERM; it stops the subject) and remove $ns"
    ;;
esac
