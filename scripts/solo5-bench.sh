#!/usr/bin/env bash
# Solo5's C bindings vs solo5-muen, side by side on the testbed (QEMU mode, TCG):
#
#   scripts/solo5-bench.sh          (as root: the network figures need a namespace)
#
# Prints, for each kind of bindings (docs/solo5.md, "Figures: C bindings vs solo5-muen"):
#   - text + data of test_hello (`size`);
#   - test_net: ping round trip, min/avg of 100 pings (one every 10 ms);
#   - test_net: an ICMP flood (`ping -f`, FLOOD pings, default 10000): echo
#     replies per second; each is one frame in and one frame out of the unikernel;
#   - test_time, which waits in solo5_yield five times for a second: the unikernel's
#     CPU use (the testbed's --stats: QEMU's CPU time over wall time).
# solo5-muen runs twice: with the testbed's default 1 kHz guest tick and with 10 kHz.
# It sleeps until a vector, and QEMU mode delivers vectors only at the tick, so the
# tick bounds its wake-up latency there (on Muen the kernel injects the vector at
# once); Solo5's C bindings spin and do not care.
#
# Benchmarks, not tests: the figures depend on the machine and its load.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
flood="${FLOOD:-10000}"
[ "$(id -u)" -eq 0 ] || { echo "solo5-bench: needs root (network namespaces, TAP)" >&2; exit 1; }

tests="$(SOLO5_SRC="${SOLO5_SRC:-$root/../shared/solo5}" scripts/solo5-build.sh | awk '/^solo5-tests / { print $2 }')"
object="$(scripts/solo5-muen-build.sh)"
cargo build -q --release -p muen-testbed
testbed="$root/target/release/muen-testbed"
images="$root/target/solo5-muen/images"
mkdir -p "$images"
for t in hello net time; do
    ld --build-id=none -static -z max-page-size=0x1000 -T "$tests/../bindings/solo5_muen.lds" \
        "$object" "$tests/test_$t/test_$t.o" "$tests/test_$t/manifest.o" -o "$images/test_$t.muen"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The network part, inside a private namespace: testbed + test_net, 100 pings, a flood.
cat >"$work/net.sh" <<'EOF'
set -euo pipefail
ip link set lo up
"$TESTBED" run --qemu --accel tcg --timeout 300 --stats $EXTRA --tap service0=tap100 "$IMAGE" \
    >"$OUT.log" 2>&1 &
tb=$!
for _ in $(seq 100); do grep -q "Serving ping on" "$OUT.log" 2>/dev/null && break; sleep 0.1; done
ip addr add 10.0.0.1/24 dev tap100
ip link set tap100 up
ping -c 3 -i 0.2 -q 10.0.0.2 >/dev/null
ping -c 100 -i 0.01 -q 10.0.0.2 >"$OUT.rtt"
start=$(date +%s.%N)
ping -f -q -c "$FLOOD" 10.0.0.2 >"$OUT.flood"
end=$(date +%s.%N)
echo "$start $end" >"$OUT.time"
kill -TERM $tb
wait $tb || true
EOF

net() { # NAME IMAGE EXTRA
    TESTBED="$testbed" IMAGE="$2" EXTRA="$3" OUT="$work/$1" FLOOD="$flood" unshare -n bash "$work/net.sh"
    local rtt received t
    rtt=$(awk -F'[/ =]+' '/^rtt/ { printf "%.3f / %.3f ms", $6, $7 }' "$work/$1.rtt")
    received=$(awk '/packets transmitted/ { print $4 }' "$work/$1.flood")
    t=$(awk '{ printf "%.2f", $2 - $1 }' "$work/$1.time")
    printf '%s\t%s\t%s\n' "$rtt" "$(awk -v n="$received" -v t="$t" 'BEGIN { printf "%d/s (%d in %s s)", n / t, n, t }')" \
        "$(grep -o 'subject_cpu_pct=[0-9.]*' "$work/$1.log" | cut -d= -f2)"
}

yield_cpu() { # IMAGE EXTRA
    "$testbed" run --qemu --accel tcg --timeout 60 --stats $2 "$1" >"$work/time.log" 2>&1 ||
        { cat "$work/time.log" >&2; exit 1; }
    grep -q SUCCESS "$work/time.log" || { cat "$work/time.log" >&2; exit 1; }
    awk '/subject_cpu_pct=/ { for (i = 1; i <= NF; i++) if ($i ~ /^(wall_s|subject_cpu_pct)=/) { split($i, kv, "="); v[kv[1]] = kv[2] } }
         END { printf "%.1f %% of a core over %.1f s", v["subject_cpu_pct"], v["wall_s"] }' "$work/time.log"
}

text_data() { size "$1" | awk 'NR == 2 { printf "%d bytes (text %d, data %d)", $1 + $2, $1, $2 }'; }

printf '\n%-28s | %-30s | %-30s | %-30s\n' "" "Solo5's C bindings" "solo5-muen, 1 kHz tick" "solo5-muen, 10 kHz tick"
rule=$(printf '%.0s-' $(seq 130))
echo "$rule"
printf '%-28s | %-30s | %-30s | %-30s\n' "test_hello text + data" \
    "$(text_data "$tests/test_hello/test_hello.muen")" "$(text_data "$images/test_hello.muen")" "(same image)"
IFS=$'\t' read -r c_rtt c_flood c_cpu < <(net c "$tests/test_net/test_net.muen" "")
IFS=$'\t' read -r r_rtt r_flood r_cpu < <(net r1 "$images/test_net.muen" "")
IFS=$'\t' read -r t_rtt t_flood t_cpu < <(net r10 "$images/test_net.muen" "--tick 10000")
printf '%-28s | %-30s | %-30s | %-30s\n' "test_net ping, min / avg" "$c_rtt" "$r_rtt" "$t_rtt"
printf '%-28s | %-30s | %-30s | %-30s\n' "test_net ICMP flood, pings/s" "$c_flood" "$r_flood" "$t_flood"
printf '%-28s | %-30s | %-30s | %-30s\n' "  subject CPU, whole run" "$c_cpu %" "$r_cpu %" "$t_cpu %"
printf '%-28s | %-30s | %-30s | %-30s\n' "test_time: 5 s in solo5_yield" \
    "$(yield_cpu "$tests/test_time/test_time.muen" "")" "$(yield_cpu "$images/test_time.muen" "")" \
    "$(yield_cpu "$images/test_time.muen" "--tick 10000")"
