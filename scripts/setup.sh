#!/usr/bin/env bash
# Installs what building and testing ktap needs on a fresh Debian machine
# (run as root). Safe to run again: it installs only what is missing.
set -euo pipefail
need=()
# prometheus: the metrics test scrapes ktap with a real server and promtool.
for pkg in libelf-dev zlib1g-dev pkg-config gcc systemtap-sdt-dev binutils prometheus; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust first)" >&2; exit 1; }
