#!/usr/bin/env bash
# Installs what building and testing need, and nothing that is already there.
# Idempotent; run as root (CI is root) or with sudo available for apt-get.
#
#   scripts/setup.sh          everything scripts/test.sh needs
#   scripts/setup.sh --demo   only what scripts/demo.sh needs (no nightly, no Miri)
set -euo pipefail
cd "$(dirname "$0")/.."

demo=false
case "${1:-}" in
    "") ;;
    --demo) demo=true ;;
    *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

need_rust_target() {
    rustup target list --installed ${2:+--toolchain "$2"} 2>/dev/null | grep -qx "$1" ||
        rustup target add "$1" ${2:+--toolchain "$2"}
}

need_rust_target x86_64-unknown-none

# Miri (unsafe-code checks) and cargo-fuzz need nightly.
if ! $demo; then
    if ! rustup toolchain list | grep -q '^nightly'; then
        rustup toolchain install nightly --profile minimal
    fi
    if ! rustup component list --toolchain nightly --installed | grep -q '^miri'; then
        rustup component add miri rust-src --toolchain nightly
    fi
    # The fuzz targets (scripts/fuzz.sh) are built and run by cargo-fuzz.
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
fi

# Debian packages: xmllint validates policies; binutils (`size`, `readelf`) checks the
# subject images; the end-to-end tests and the demo use the network tools (ab is in
# apache2-utils).
pkgs=(libxml2-utils binutils iproute2 iputils-ping curl apache2-utils)
$demo || pkgs+=(tshark qemu-system-x86)
# Muen's own policy tool chain (../shared/muen, run by the tests through pipeline.sh):
# its runtime libraries and helpers, as its DEBIAN-PACKAGES lists them (python3-lxml
# for /usr/bin/python3, which the kit's scripts run). Solo5's build (scripts/solo5-build.sh)
# needs libseccomp-dev and pkg-config.
if ! $demo; then
    kit_pkgs=../shared/muen/DEBIAN-PACKAGES
    [ -f "$kit_pkgs" ] || { echo "setup.sh: $kit_pkgs is missing (Muen's tool chain beside the checkout)" >&2; exit 1; }
    mapfile -t muen_pkgs < <(grep -v '^[[:space:]]*$' "$kit_pkgs")
    pkgs+=("${muen_pkgs[@]}" libseccomp-dev pkg-config)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
