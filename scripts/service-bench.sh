#!/usr/bin/env bash
# What flightrec costs an axum service per request, beside no subscriber, tracing's registry,
# its fmt layer and tokio-console's layer: every variant in a server process of its own, one
# after another, driven by the same clients, then one table (see the README's "Cost per
# request").
#
#   scripts/service-bench.sh [OPTIONS]    options go to the driver (--help lists them)
#
# Four builds. The plain one serves most variants. flightrec's task hooks need
# `--cfg tokio_unstable`; tokio-console's layer needs it too, with tokio's own `tracing`
# instrumentation (which flightrec would otherwise record as well) and gRPC; dial9's runtime
# hooks need it as well. Each is built in
# a target directory of its own, leaving the workspace's default build without them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p flightrec-service-bench
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/unstable \
    cargo build --release --quiet -p flightrec-service-bench --features hooks
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/console \
    cargo build --release --quiet -p flightrec-service-bench --features console
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/dial9 \
    cargo build --release --quiet -p flightrec-service-bench --features dial9
exec target/release/flightrec-service-bench \
    --hooks-bin target/unstable/release/flightrec-service-bench \
    --console-bin target/console/release/flightrec-service-bench \
    --dial9-bin target/dial9/release/flightrec-service-bench "$@"
