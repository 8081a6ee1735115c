#!/usr/bin/env bash
# The libraries build with the lowest versions of their direct dependencies that they
# declare: a service whose lockfile holds older versions than ours gets a resolver error,
# never a compile error in our code. Resolved with nightly cargo's
# `-Z direct-minimal-versions`, in a copy of the libraries' workspace (the command and the
# viewer, which services do not depend on, are left out), then built with stable.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
copy=target/minimal-versions/workspace
rm -rf "$copy"
mkdir -p "$copy"
cp -r Cargo.toml crates "$copy"/
libs='"crates/flightrec-format", "crates/flightrec-analysis", "crates/tracing-flightrec"'
sed -i "s#^members = .*#members = [$libs]#" "$copy/Cargo.toml"
cd "$copy"
cargo +nightly generate-lockfile -Z direct-minimal-versions --quiet
export CARGO_TARGET_DIR="$PWD/../target"
cargo check --locked --quiet -p flightrec-format -p flightrec-analysis -p tracing-flightrec
# The `tokio` feature, which needs tokio's task hooks.
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR="$PWD/../target-tokio" \
    cargo check --locked --quiet -p tracing-flightrec --features tokio
echo "the libraries build with their declared minimal versions"
