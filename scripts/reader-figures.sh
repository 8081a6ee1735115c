#!/usr/bin/env bash
# What reading a big recording costs, in one run on this machine: each reader's wall time
# and peak memory (the kernel's accounting, /usr/bin/time's %M) on one dump of a full ring,
# and the viewer's first meta answer. The figures issue 33's targets are measured by.
#
#   scripts/reader-figures.sh [RING_MIB] [RECORDS]
#
# RING_MIB (default 256) and RECORDS (default 24000000, what fills 256 MiB): the dump is made
# by tracing-flightrec's `big_dump` example, four threads writing spans and events.
set -euo pipefail
cd "$(dirname "$0")/.."

ring_mib=${1:-256}
records=${2:-24000000}
if [ ! -x /usr/bin/time ]; then
    echo "reader-figures: /usr/bin/time (GNU time) is needed to measure peak memory" >&2
    exit 2
fi

cargo build -q --release --bin flightrec
cargo build -q --release -p tracing-flightrec --example big_dump
bin=target/release/flightrec
work=$(mktemp -d "${TMPDIR:-/tmp}/flightrec-figures.XXXXXX")
trap 'rm -rf "$work"' EXIT

dump=$(target/release/examples/big_dump "$records" "$work/dump" "$ring_mib" 2> /dev/null)
present=$("$bin" info --json "$dump" | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
echo "dump: ${ring_mib} MiB ring, $present records, $(du -m "$dump" | cut -f1) MB on disk"
printf '%-28s %10s %12s\n' reader "wall s" "peak MB"

measure() {
    local name=$1
    shift
    /usr/bin/time -o "$work/time" -f '%e %M' "$@" > /dev/null 2> /dev/null
    local out
    out=$(tail -1 "$work/time")
    printf '%-28s %10s %12d\n' "$name" "${out% *}" $(( ${out#* } / 1024 ))
}

measure info "$bin" info "$dump"
measure check "$bin" check "$dump"
measure "cat" "$bin" cat "$dump"
measure "export --format perfetto" "$bin" export "$dump" --format perfetto -o "$work/out.pftrace"
measure "export --format parquet" "$bin" export "$dump" --format parquet -o "$work/tables"

# The viewer: time from start to its first meta answer and to its whole one, and its peak.
start=$(date +%s.%N)
"$bin" view --port 0 "$dump" > "$work/view.out" 2> /dev/null &
view=$!
url=""
for _ in $(seq 1 600); do
    url=$(grep -o 'http://[^ /]*' "$work/view.out" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
done
if [ -z "$url" ]; then
    kill "$view" 2> /dev/null || true
    echo "reader-figures: the viewer never printed its address" >&2
    exit 1
fi
# A recording this big answers first with its skeleton (where each thread was busy) while it
# is read, then in full: both times, and the peak with it open.
curl -sf -o /dev/null "$url/api/dumps/0/meta"
first=$(date +%s.%N)
for _ in $(seq 1 1200); do
    curl -sf "$url/api/dumps/0/meta" | grep -q '"loading":false' && break
    sleep 0.1
done
end=$(date +%s.%N)
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$view/status")
kill "$view" 2> /dev/null || true
wait "$view" 2> /dev/null || true
printf '%-28s %10.2f %12s\n' "view: first meta" "$(echo "$first - $start" | bc)" "-"
printf '%-28s %10.2f %12d\n' "view: whole meta" "$(echo "$end - $start" | bc)" $(( peak_kb / 1024 ))
