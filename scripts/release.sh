#!/usr/bin/env bash
# Builds one self-contained x86-64 ktap binary: libbpf, libelf and zlib are
# built from the sources libbpf-sys vendors and linked statically, so the
# binary needs only the C library (glibc, libgcc_s) on the machine it is
# copied to. Usage: scripts/release.sh [OUT]   (default: dist/ktap)
# Needs root on a Debian machine only to install the build tools it lacks
# (autoconf, automake, libtool, autopoint, flex, bison, gawk).
# Never touches the normal target/ directory: it builds in
# $CARGO_TARGET_DIR (default target-release-static/).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist/ktap}
need=()
for pkg in autoconf automake libtool autopoint flex bison gawk make gcc pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "release: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-release-static}
cargo build --release --locked --features static --bin ktap
mkdir -p "$(dirname "$out")"
cp "$CARGO_TARGET_DIR/release/ktap" "$out"
strip "$out"
# What the binary still loads at run time: the C library only.
libs=$(ldd "$out" 2>&1 || true)
bad=$(printf '%s\n' "$libs" | grep '=>' | grep -Ev 'lib(c|m|gcc_s|pthread|dl|rt|util)\.so' || true)
if [ -n "$bad" ]; then
    echo "release: $out links libraries a bare machine may lack:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "release: $out ($(stat -c %s "$out") bytes)"
