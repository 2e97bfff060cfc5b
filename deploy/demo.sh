#!/usr/bin/env bash
# The check-in scenario, end to end, on the embedded sample data:
# installs dependencies (Debian 12, as root), builds nbad, loads the sample
# warehouse extracts, starts nbad on loopback and asks it what to do when
# passengers check in at a kiosk, at a desk and by phone.
#
# Usage: deploy/demo.sh [--keep]   (--keep leaves nbad running afterwards)
# Environment: NBA_PORT (default 7411).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
[ "${1:-}" = "--keep" ] && keep=true
port=${NBA_PORT:-7411}

bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target nbad nbactl

work=build/demo
rm -rf "$work" && mkdir -p "$work"
# Incident dates are relative to today, so the sample never ages out.
bash deploy/sample/incidents.sh > "$work/incidents.csv"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Loading the warehouse extracts (nbactl load)"
build/nbactl load --db "$work/db" --customers deploy/sample/customers.csv \
  --incidents "$work/incidents.csv"

say "Starting nbad on 127.0.0.1:$port"
build/nbad --db "$work/db" --rules rules/airline-checkin.yaml --port "$port" \
  2> "$work/nbad.log" &
nbad_pid=$!
stop() { kill "$nbad_pid" 2>/dev/null; wait "$nbad_pid" 2>/dev/null || true; }
$keep || trap stop EXIT
for _ in $(seq 1 50); do
  build/nbactl ping --port "$port" >/dev/null 2>&1 && break
  if ! kill -0 "$nbad_pid" 2>/dev/null; then cat "$work/nbad.log" >&2; exit 1; fi
  sleep 0.1
done
build/nbactl ping --port "$port"

decide() { build/nbactl decide --port "$port" "$@"; }

say "Giulia Rossi (C1001: platinum, Italian, broken seat-back screen on AZ611 ten days ago) checks in at a kiosk"
decide --customer C1001 --channel kiosk --touchpoint checkin --context flight=AZ610,cabin=Y
say "... walks on to a check-in desk for the same flight: the upgrade is already done"
decide --customer C1001 --channel desk --touchpoint checkin --context flight=AZ610,cabin=Y
say "... and calls the IVR: the same"
decide --customer C1001 --channel ivr --touchpoint checkin --context flight=AZ610,cabin=Y
say "The contact history (nbactl history): one upgrade, one apology letter, for one incident"
build/nbactl history --db "$work/db" --customer C1001
say "The apology letter waiting for the letter service (nbactl outbox export)"
build/nbactl outbox export --db "$work/db" "$work/letters"
for letter in "$work"/letters/*.txt; do
  grep -q "" "$letter" && head -c 2000 "$letter" && echo && break
done
say "A low-value passenger with no incidents checks in at a kiosk"
decide --customer C1002 --channel kiosk --touchpoint checkin --context cabin=Y
say "A passenger nbad does not know"
decide --customer C9999 --channel kiosk --touchpoint checkin --context cabin=Y
say "The kiosk decision for C1001 as JSON (nbactl decide --json): a retry gets the same answer"
decide --customer C1001 --channel kiosk --touchpoint checkin --context flight=AZ610,cabin=Y --json

say "Why? nbactl explain asks nbad for every rule's conditions and fate"
build/nbactl explain --port "$port" --customer C1001 --channel kiosk --touchpoint checkin \
  --context flight=AZ610,cabin=Y
say "What nbad has done so far (nbactl status): the time inside nbad per decision"
build/nbactl status --port "$port"

if $keep; then
  say "nbad keeps running (pid $nbad_pid, log $work/nbad.log); stop it with: kill $nbad_pid"
fi
