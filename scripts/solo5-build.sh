#!/usr/bin/env bash
# Builds Solo5 (its tenders, elftool, bindings and tests, every target including
# `muen`) from the pinned tree beside the checkout, in a copy under target/.
#
#   scripts/solo5-build.sh            build if needed, print where the tests are
#   SOLO5_SRC=DIR scripts/solo5-build.sh   another Solo5 tree (default ../shared/solo5)
#
# The copy lives in target/solo5/src (git-ignored): Solo5's code is never part of this
# repository. The copy is rebuilt only when the source tree changed (a stamp of its
# file names, modes and contents) or the last build did not finish; otherwise the
# script only checks the stamp, which takes well under a second. Installs Debian's
# libseccomp-dev and pkg-config when missing (Solo5's configure.sh needs them for the
# hvt and spt tenders), as scripts/setup.sh installs packages.
#
# Prints, on stdout, one line per fact:
#   solo5-src <dir>       the built tree
#   solo5-tests <dir>     its tests/ (tests/test_*/test_*.{hvt,spt,virtio,muen,xen})
#   solo5-elftool <path>  the built solo5-elftool
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${SOLO5_SRC:-$root/../shared/solo5}"
out="$root/target/solo5"
copy="$out/src"
stamp_file="$out/stamp"

die() { echo "solo5-build: $*" >&2; exit 1; }

[ -f "$src/configure.sh" ] && [ -f "$src/include/solo5.h" ] ||
    die "no Solo5 source tree at $src (configure.sh and include/solo5.h missing); expected the pinned tree ../shared/solo5 beside the checkout, or set SOLO5_SRC"
src="$(cd "$src" && pwd)"

# The stamp: every file's path, mode and content hash, sorted by path.
stamp() {
    (cd "$src" && find . -type f -printf '%p %m\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
        sha256sum | cut -d' ' -f1
}
want="$(stamp)"

report() {
    echo "solo5-src $copy"
    echo "solo5-tests $copy/tests"
    echo "solo5-elftool $copy/elftool/solo5-elftool"
}

if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ] && [ -d "$copy" ]; then
    report
    exit 0
fi

# Debian packages Solo5's configure.sh needs (libseccomp for the tenders).
pkgs=(libseccomp-dev pkg-config make gcc)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "solo5-build: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# A fresh copy: an old build of another source must not leak into this one. The
# shared tree is read-only; the copy must be writable.
rm -f "$stamp_file"
rm -rf "$copy"
mkdir -p "$out"
cp -R "$src" "$copy.tmp"
chmod -R u+w "$copy.tmp"
mv "$copy.tmp" "$copy"

log="$out/build.log"
echo "solo5-build: building Solo5 in $copy (log: $log)" >&2
if ! (cd "$copy" && ./configure.sh && make -j"$(nproc)") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "Solo5's configure.sh or make failed in $copy (whole log: $log)"
fi
[ -f "$copy/tests/test_hello/test_hello.muen" ] ||
    die "the build finished but $copy/tests/test_hello/test_hello.muen is missing (log: $log)"

echo "$want" >"$stamp_file"
report
