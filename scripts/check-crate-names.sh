#!/usr/bin/env bash
# Every crate we publish has a name that is free in cargo's default registry, or already
# ours there: `cargo info NAME`, asked from outside this workspace, must find nothing or a
# crate with our description. A name that someone else owns fails the run.
#
# When the registry cannot be reached the check cannot say anything: it prints why and exits
# 3, which scripts/test.sh reports as not run (and fails as root, CI's case).
set -euo pipefail
cd "$(dirname "$0")/.."

outside=$(mktemp -d)
trap 'rm -rf "$outside"' EXIT
status=0
# name<TAB>description of each publishable package, from cargo's own view of the workspace.
while IFS=$'\t' read -r name description; do
    if out=$(cd "$outside" && cargo info "$name" --registry crates-io 2>&1); then
        if grep -qxF "$description" <<<"$out"; then
            echo "ours:  $name"
        else
            echo "TAKEN: $name is someone else's crate in the registry:" >&2
            sed -n '1,3p' <<<"$out" | sed 's/^/         /' >&2
            status=1
        fi
    elif grep -q "could not find \`$name\`" <<<"$out"; then
        echo "free:  $name"
    else
        echo "could not ask the registry about $name: $(tail -1 <<<"$out")" >&2
        exit 3
    fi
done < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["publish"] != []:
        print(p["name"] + "\t" + (p["description"] or ""))
')
exit $status
