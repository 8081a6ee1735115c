#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs: the Rust toolchain the
# libraries claim (rustup) and the nightly toolchain's Miri, a Python with Perfetto's
# generated protobuf classes, moto's S3-compatible server, pyarrow and DuckDB (PyPI) under
# target/test-tools, and Debian's chromium (apt, as root or with password-less sudo) with
# playwright-core (npm) for the viewer's browser tests.
#
# It runs as any user. As root (CI) every test must run. As an ordinary user the tests that
# need root (a tmpfs mount, dropping to another user) or a browser it could not install say
# so and pass, and the last line names them and why.
#
#   scripts/test.sh            formatting, lints, docs, packaging, crate names, minimal versions,
#                              unit + end-to-end tests, loom, Miri
#   scripts/test.sh --stress   the same, then 2000 SIGKILL runs, 1000 snapshots under full load,
#                              100 processes dying among collectors and `watch`, and 5 minutes
#                              of fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

stress=0
[[ "${1:-}" == "--stress" ]] && stress=1

# Each step says when it starts (seconds since the script did), so a slow step shows.
step() { printf '\n==> %s  [%ss]\n' "$*" "$SECONDS"; }

# CI's disk can be small (a cold run once failed there with "No space left on device"). A
# cold build gains nothing from incremental state, which doubles the size of what a workspace
# crate leaves behind; and each side build's own target directory goes once its step is done.
export CARGO_INCREMENTAL=0
done_with() { rm -rf "$@"; }
disk() { printf 'disk: target holds %s\n' "$(du -sh target | cut -f1)"; }

root=0
[[ $(id -u) -eq 0 ]] && root=1
# Tests that cannot run here append `<test>\t<why>` to this file (tests/e2e/helpers.rs).
mkdir -p target
export FLIGHTREC_NOT_RUN="$PWD/target/not-run.txt"
: >"$FLIGHTREC_NOT_RUN"

step "formatting"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "packaging: every crate as crates.io would take it (the e2e tests build an app on the packed flightrec)"
cargo package --workspace --exclude flightrec-service-bench --no-verify --allow-dirty --quiet

step "crate names: each is free in cargo's default registry, or ours"
names=0
scripts/check-crate-names.sh || names=$?
if (( names == 3 )) && (( ! root )); then
    printf 'scripts/check-crate-names.sh\tthe crates.io registry could not be reached\n' >>"$FLIGHTREC_NOT_RUN"
elif (( names != 0 )); then
    exit 1
fi

step "rust-version: the libraries build with the oldest Rust they claim (in the background, beside the test tools' downloads)"
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
(
    if ! rustup toolchain list | grep -q "^$msrv"; then
        rustup toolchain install "$msrv" --profile minimal
    fi
    CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check --locked --quiet \
        -p flightrec-format -p tracing-flightrec -p flightrec-analysis
) >target/msrv.log 2>&1 &
msrv_check=$!

step "test tools: Perfetto's own protobuf classes, moto's S3-compatible server, pyarrow and DuckDB (PyPI)"
py=target/test-tools/python
if ! "$py/bin/python" -c 'import perfetto.protos.perfetto.trace.perfetto_trace_pb2, moto, boto3, pyarrow, duckdb' 2>/dev/null \
    || [[ ! -x "$py/bin/moto_server" ]]; then
    # From scratch: a venv left half-installed (a run stopped during pip) would keep its
    # packages and never get their command-line scripts.
    python3 -m venv --clear "$py"
    "$py/bin/pip" install --quiet --disable-pip-version-check 'perfetto==0.59.1' 'protobuf>=5' \
        'moto[server]==5.1.*' 'pyarrow==26.0.*' 'duckdb==2.0.*'
fi
export FLIGHTREC_PYTHON="$PWD/$py/bin/python" FLIGHTREC_REQUIRE_PERFETTO_PY=1
export FLIGHTREC_MOTO="$PWD/$py/bin/moto_server" FLIGHTREC_REQUIRE_S3=1
# The tables' engines: pyarrow reads them (and from the local S3 server), DuckDB queries them.
export FLIGHTREC_REQUIRE_ENGINES=1

step "test tools: Debian's chromium and playwright-core, for the viewer's browser tests; binutils, to split debug info"
if ! command -v chromium >/dev/null || ! command -v objcopy >/dev/null; then
    sudo=""
    if (( ! root )); then
        sudo -n true 2>/dev/null && sudo="sudo -n" || sudo="none"
    fi
    if [[ $sudo != none ]]; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium binutils >/dev/null
    else
        echo "chromium is not installed, and installing it needs root: the browser tests will not run"
    fi
fi
# playwright-core drives the system chromium; it never downloads a browser of its own.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# As root, CI's case, what only root or a browser allows must run rather than pass unseen.
if (( root )) || command -v chromium >/dev/null; then
    export FLIGHTREC_REQUIRE_BROWSER=1
fi
# The full-disk and read-only-directory tests mount a tmpfs and drop to another user.
if (( root )); then
    export FLIGHTREC_REQUIRE_ROOT=1
fi

step "rust-version: the check started above"
if ! wait "$msrv_check"; then
    cat target/msrv.log >&2
    echo "the libraries do not build with Rust $msrv, their rust-version" >&2
    exit 1
fi
done_with target/msrv

step "minimal versions: the libraries build with the lowest versions they declare"
scripts/check-minimal-versions.sh
done_with target/minimal-versions

step "unit and end-to-end tests"
cargo test --workspace
disk
# The e2e tests' own small crates (a user's crate, a panic = "abort" program) built here.
done_with target/keep-check target/panic-abort

step "tokio task hooks: the \`tokio\` feature under --cfg tokio_unstable, and its message without"
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/tokio cargo test -p tracing-flightrec --features tokio --lib tokio_tasks
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/tokio cargo clippy -p tracing-flightrec --features tokio --all-targets -- -D warnings
if out=$(cargo check -p tracing-flightrec --features tokio --message-format short 2>&1); then
    echo "the tokio feature built without --cfg tokio_unstable: it must refuse" >&2
    exit 1
elif ! grep -q "needs.*tokio_unstable\|only offers when built with \`--cfg tokio_unstable\`" <<<"$out"; then
    echo "the tokio feature failed without --cfg tokio_unstable, but not with its message:" >&2
    echo "$out" >&2
    exit 1
fi
done_with target/tokio

step "loom: model-checking the chunk protocol"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p tracing-flightrec --lib --release
done_with target/loom

step "Miri: encoder and decoder over heap memory"
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
rustup component add --toolchain nightly miri rust-src
cargo +nightly miri setup
cargo +nightly miri test -p flightrec-format --lib
done_with target/miri

if (( stress )); then
    step "stress: 2000 SIGKILL runs"
    FLIGHTREC_KILL_RUNS=2000 cargo test -p flightrec-cli --test e2e --release -- kill_sweep
    step "stress: 1000 snapshots of a ring under full load"
    FLIGHTREC_SNAPSHOT_RUNS=1000 cargo test -p flightrec-cli --test e2e --release -- \
        triggers::snapshots_under_full_load --nocapture
    step "stress: 100 processes dying in one directory among recorders starting and watch"
    cargo test -p flightrec-cli --test e2e --release -- --ignored --exact \
        collectors::stress_dying_processes_with_collectors_and_watch
    step "stress: fuzzing the decoder for 5 minutes"
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cargo run -q -p flightrec-format --example fuzz_seeds -- fuzz/corpus/decode
    (cd fuzz && cargo +nightly fuzz run decode corpus/decode -- -max_total_time=300 -max_len=16384)
    step "stress: fuzzing the history's column layout for 2 minutes"
    (cd fuzz && cargo +nightly fuzz run history_columns -- -max_total_time=120 -max_len=16384)
fi

step "all checks passed"
disk
# The last line says what did not run here, and why.
if [[ -s $FLIGHTREC_NOT_RUN ]]; then
    echo "not run here (as $(id -un)), by reason:"
    cut -f2 "$FLIGHTREC_NOT_RUN" | sort | uniq -c | sed 's/^ */  /'
    printf 'not run here: %s test(s): %s\n' "$(wc -l <"$FLIGHTREC_NOT_RUN")" \
        "$(cut -f1 "$FLIGHTREC_NOT_RUN" | sort -u | paste -sd, - | sed 's/,/, /g')"
else
    echo "not run here: nothing; every test ran"
fi
