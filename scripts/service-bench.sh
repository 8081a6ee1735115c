#!/usr/bin/env bash
# What flightrec costs an axum service per request, beside no subscriber, tracing's fmt layer
# and tokio-console's layer: every variant in a server process of its own, one after another,
# driven by the same clients, then one table (see the README's "Cost per request").
#
#   scripts/service-bench.sh [OPTIONS]    options go to the driver (--help lists them)
#
# Two builds: the plain one serves most variants; tokio-console's layer and flightrec's task
# hooks need `--cfg tokio_unstable` (and console-subscriber brings gRPC), so they are built
# in a target directory of their own, leaving the workspace's default build without them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p flightrec-service-bench
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/unstable \
    cargo build --release --quiet -p flightrec-service-bench --features unstable
exec target/release/flightrec-service-bench \
    --unstable-bin target/unstable/release/flightrec-service-bench "$@"
