#!/usr/bin/env bash
# Builds solo5-muen, Solo5's Muen bindings on this project's runtime, into one
# relocatable object that links in place of Solo5's own bindings/solo5_muen.o:
#
#   scripts/solo5-muen-build.sh [--features abi3] [OUT]
#
# OUT defaults to target/solo5-muen/solo5_muen.o (named like Solo5's, so that Solo5's
# toolchain wrapper finds it with -L DIR -l :solo5_muen.o). Prints its path.
#
# Steps (docs/solo5.md, "Building the object"):
#  1. cargo rustc --crate-type staticlib for x86_64-unknown-none, release;
#  2. ld -r with solo5-muen/link/solo5_muen-r.lds: every member of the archive, unused
#     sections dropped (--gc-sections from _start and the exported solo5_* functions),
#     sections merged into the names Solo5's linker script knows, _start first;
#  3. objcopy -w -G: only solo5_*, _start, __stack_chk_guard and __stack_chk_fail
#     stay global (as Solo5 localises its own object), so the application's memcpy
#     and friends do not clash with the library's; debug sections are dropped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
features=()
if [ "${1:-}" = "--features" ]; then
    features=(--features "$2")
    shift 2
fi
out="${1:-$root/target/solo5-muen/solo5_muen.o}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# What the object exports: solo5.h's functions, the entry and the stack protector.
exports=(
    _start __stack_chk_guard __stack_chk_fail
    solo5_exit solo5_abort solo5_console_write
    solo5_clock_monotonic solo5_clock_wall solo5_yield
    solo5_tls_size solo5_tls_tp_offset solo5_tls_init solo5_set_tls_base
    solo5_net_acquire solo5_net_read solo5_net_write
    solo5_block_acquire solo5_block_read solo5_block_write
)

cargo rustc -q -p solo5-muen --profile solo5 --target x86_64-unknown-none "${features[@]}" \
    --crate-type staticlib
lib="$target_dir/x86_64-unknown-none/solo5/libsolo5_muen.a"
[ -f "$lib" ] || { echo "solo5-muen-build: $lib was not built" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
undefined=()
for s in "${exports[@]}"; do undefined+=(-u "$s"); done
ld -r --gc-sections -e _start "${undefined[@]}" -T solo5-muen/link/solo5_muen-r.lds \
    --whole-archive "$lib" -o "$tmp"
keep=()
for s in "${exports[@]}"; do keep+=(-G "$s"); done
objcopy -w "${keep[@]}" --strip-debug "$tmp"

# Every export must be defined, and nothing else global may be.
symbols="$(nm "$tmp")"
missing=$(for s in "${exports[@]}"; do grep -q " [TDRB] $s\$" <<<"$symbols" || echo "$s"; done)
[ -z "$missing" ] || { echo "solo5-muen-build: not defined in $out: $missing" >&2; exit 1; }
extra=$(nm -g --defined-only "$tmp" | awk '{print $3}' | grep -vxF -f <(printf '%s\n' "${exports[@]}") || true)
[ -z "$extra" ] || { echo "solo5-muen-build: unexpected global symbols: $extra" >&2; exit 1; }
mv "$tmp" "$out"
trap - EXIT
echo "$out"
