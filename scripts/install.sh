#!/usr/bin/env bash
# Installs ktap under PREFIX (default /usr/local): the binary, the shipped
# tapsets (PREFIX/share/ktap/tapsets, where the binary looks for them), its
# man page and its bash, zsh and fish completions, the last three generated
# by the binary itself from its flags (`ktap --generate man|bash|zsh|fish`).
# Usage: scripts/install.sh [PREFIX]
#   DESTDIR=/tmp/stage  stage the files under another root (packaging)
#   KTAP_BIN=dist/ktap  install this binary (e.g. from scripts/release.sh)
#                       instead of building target/release/ktap
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
dest=${DESTDIR:-}${prefix}
bin=${KTAP_BIN:-}
if [ -z "$bin" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
    cargo build --release --locked --bin ktap
    bin=${CARGO_TARGET_DIR:-target}/release/ktap
fi
install -Dm755 "$bin" "$dest/bin/ktap"
for t in scripts/tapsets/*.kp; do
    install -Dm644 "$t" "$dest/share/ktap/tapsets/$(basename "$t")"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" --generate man >"$tmp/ktap.1"
"$bin" --generate bash >"$tmp/ktap.bash"
"$bin" --generate zsh >"$tmp/_ktap"
"$bin" --generate fish >"$tmp/ktap.fish"
install -Dm644 "$tmp/ktap.1" "$dest/share/man/man1/ktap.1"
install -Dm644 "$tmp/ktap.bash" "$dest/share/bash-completion/completions/ktap"
install -Dm644 "$tmp/_ktap" "$dest/share/zsh/site-functions/_ktap"
install -Dm644 "$tmp/ktap.fish" "$dest/share/fish/vendor_completions.d/ktap.fish"
echo "install: ktap, its tapsets, man page and completions are in $dest"
