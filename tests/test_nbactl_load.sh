#!/usr/bin/env bash
# The real nbactl on a database root: full loads build generations and
# switch to them, a failed load leaves everything as it was, --max-errors
# skips and reports, --no-switch, db list / switch (and rollback) / prune,
# an upsert, and the lock that keeps two loads apart.
set -euo pipefail

NBACTL=${NBACTL_BIN:?run this test through ctest}
work=$(mktemp -d /tmp/nba-load-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/db

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# run WANT_CODE COMMAND...: runs it, output in $work/out, checks the code.
run() {
  local want=$1 got=0
  shift
  "$@" >"$work/out" 2>&1 || got=$?
  if [[ $got != "$want" ]]; then
    cat "$work/out" >&2
    fail "$* exited $got, want $want"
  fi
}

# has TEXT: the last output holds TEXT.
has() {
  grep -qF -- "$1" "$work/out" || {
    cat "$work/out" >&2
    fail "expected '$1' in the output"
  }
}

current() { readlink "$root/current"; }

header_c='customer_id,name,tier,lifetime_value,predicted_ltv,language'
header_i='incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note'
printf '%s\nK1,Ann,gold,100,200,en\nK2,Bob,none,1,2,de\nK3,Cid,none,1,2,fr\n' "$header_c" \
  >"$work/customers.csv"
printf '%s\nJ1,K1,delay,2,2026-01-01T00:00:00Z,AZ1,0,\nJ2,K3,delay,3,2026-01-02T00:00:00Z,,1,x\n' \
  "$header_i" >"$work/incidents.csv"
load=("$NBACTL" load --db "$root" --customers "$work/customers.csv" --incidents "$work/incidents.csv")

# A full load: the first generation, current.
run 0 "${load[@]}"
has "loaded 3 customers and 2 incidents into"
has "now current"
[[ $(current) == gen-000001 ]] || fail "current is $(current)"

# Again: a second generation beside the first, which stays until pruned.
run 0 "${load[@]}"
[[ $(current) == gen-000002 ]] || fail "current is $(current)"
[[ -f $root/gen-000001/data.mdb ]] || fail "gen-000001 is gone"

# A bad row: named by file and line; no new generation; current unchanged.
printf '%s\nK1,Ann,gold,100,200,en\nK2,Bob,none,lots,2,de\nK3,Cid,none,1,2,fr\n' "$header_c" \
  >"$work/bad.csv"
bad=("$NBACTL" load --db "$root" --customers "$work/bad.csv" --incidents "$work/incidents.csv")
run 65 "${bad[@]}"
has "bad.csv:3: lifetime_value is not a decimal number"
has "nothing was loaded; $root is unchanged"
[[ ! -e $root/gen-000003 ]] || fail "the failed load left gen-000003"
[[ $(current) == gen-000002 ]] || fail "current is $(current)"

# With --max-errors the bad row is skipped and reported.
run 0 "${bad[@]}" --max-errors 1
has "skipped $work/bad.csv:3: lifetime_value"
has "1 rejected"
has "loaded 2 customers and 2 incidents"
[[ $(current) == gen-000003 ]] || fail "current is $(current)"

# --no-switch builds without switching; db switch then serves the newest.
run 0 "${load[@]}" --no-switch
[[ -f $root/gen-000004/data.mdb ]] || fail "no gen-000004"
[[ $(current) == gen-000003 ]] || fail "current is $(current)"
run 0 "$NBACTL" db list --db "$root"
has "gen-000004"
has "in use"
run 0 "$NBACTL" db switch --db "$root"
has "current is now gen-000004 (was gen-000003)"
[[ $(current) == gen-000004 ]] || fail "current is $(current)"

# Rollback to an older one, then prune: current and the one before stay,
# the others (the newer ones too) go.
run 0 "$NBACTL" db switch --db "$root" gen-000002
[[ $(current) == gen-000002 ]] || fail "current is $(current)"
run 66 "$NBACTL" db switch --db "$root" gen-000009
run 64 "$NBACTL" db switch --db "$root" one two
run 0 "$NBACTL" db prune --db "$root" --keep 1
has "removed gen-000004"
has "removed gen-000003"
for g in gen-000001 gen-000002; do [[ -d $root/$g ]] || fail "$g was pruned"; done
for g in gen-000003 gen-000004; do [[ ! -e $root/$g ]] || fail "$g was kept"; done
run 0 "$NBACTL" db prune --db "$root" --keep 1
has "nothing to remove"

# An upsert: into the current generation, in place.
printf '%s\nK9,Nia,gold,5,6,it\nK1,Ann Smith,gold,100,200,en\n' "$header_c" >"$work/delta_c.csv"
printf '%s\nJ9,K9,delay,2,2026-01-03T00:00:00Z,,0,\nJ7,K2,delay,4,2026-01-03T00:00:00Z,,0,\n' \
  "$header_i" >"$work/delta_i.csv"
run 0 "$NBACTL" load --db "$root" --upsert --customers "$work/delta_c.csv" \
  --incidents "$work/delta_i.csv"
has "upserted 2 customers and 2 incidents into $(cd "$root" && pwd -P)/gen-000002"
[[ $(current) == gen-000002 ]] || fail "current is $(current)"
run 0 "$NBACTL" db list --db "$root" --json
has '"name": "gen-000002", "current": true'
has '"customers": 4, "incidents": 4'
# An incident of a customer in neither the delta nor the database.
printf '%s\nJ8,K77,delay,2,2026-01-03T00:00:00Z,,0,\n' "$header_i" >"$work/delta_bad.csv"
run 65 "$NBACTL" load --db "$root" --upsert --customers "$work/delta_c.csv" \
  --incidents "$work/delta_bad.csv"
has "delta_bad.csv:2: incident of a customer that is not in the customers file or the database"
run 0 "$NBACTL" db list --db "$root" --json
has '"customers": 4, "incidents": 4'
run 66 "$NBACTL" load --db "$work/none" --upsert --customers "$work/delta_c.csv"

# Another load, switch or prune holding the root: busy, nothing touched.
flock "$root" sleep 2 &
holder=$!
sleep 0.3
run 75 "${load[@]}"
has "another load, switch or prune is working on this database"
run 75 "$NBACTL" db prune --db "$root"
wait "$holder"
[[ $(current) == gen-000002 ]] || fail "current is $(current)"

# Usage errors.
run 64 "$NBACTL" load --db "$root"
run 64 "$NBACTL" load --db "$root" --customers x --max-errors -1
run 64 "$NBACTL" load --db "$root" --customers x --upsert --no-switch
run 64 "$NBACTL" db
run 64 "$NBACTL" db list
echo "ok"
