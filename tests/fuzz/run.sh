#!/usr/bin/env bash
# Runs the libFuzzer targets one after the other, each for SECONDS (default
# 30), and prints how many inputs each one executed, how fast, and the
# coverage reached. Exits non-zero when any target crashed; its reproducer
# is kept and its path printed.
#
# Usage: tests/fuzz/run.sh [--long] [SECONDS] [TARGET...]
#   tests/fuzz/run.sh                  every target, 30 s each
#   tests/fuzz/run.sh 60 fuzz_csv      one target
#   tests/fuzz/run.sh --long           the long run: each target until 10
#                                      million executions or 30 minutes,
#                                      whichever comes first, at the lowest
#                                      CPU priority (nice -n 19)
#   tests/fuzz/run.sh --long fuzz_rules
#
# Build the targets first (tests/fuzz/README.md):
#   CC=clang cmake -S . -B build-fuzz -DNBA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-fuzz -j --target fuzz_targets
#
# Environment: NBA_FUZZ_BUILD the build directory (default build-fuzz);
# NBA_FUZZ_RUNS=N stops each target after N executions too; NBA_FUZZ_KEEP=1
# keeps the scratch directory (the inputs found) even when nothing crashed.
# Each target writes what it finds into an empty scratch directory, given
# first; the seed corpus and the regressions are only read, so a run never
# writes into the source tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

usage() {
  echo "usage: $0 [--long] [SECONDS] [TARGET...]" >&2
  exit 64
}
seconds=30
runs=${NBA_FUZZ_RUNS:-}
nice=()
if [ "${1:-}" = --long ]; then
  shift
  seconds=1800
  runs=${runs:-10000000}
  nice=(nice -n 19) # the machine is shared: a long run takes only idle CPU
fi
case ${1:-} in
  '' | *[!0-9]*) ;;
  *)
    seconds=$1
    shift
    ;;
esac
case $runs in *[!0-9]*) usage ;; esac
for t in "$@"; do
  case $t in
    fuzz_frame | fuzz_request | fuzz_rules | fuzz_csv | fuzz_record) ;;
    *) usage ;;
  esac
done
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_frame fuzz_request fuzz_rules fuzz_csv fuzz_record)
fi
build=${NBA_FUZZ_BUILD:-$root/build-fuzz}
case $build in
  /*) ;;
  *) build=$PWD/$build ;;
esac

scratch=$(mktemp -d "${TMPDIR:-/tmp}/nba-fuzz.XXXXXX")
failed=()

for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/$t
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is not built (see tests/fuzz/README.md)" >&2
    exit 66
  fi
  # The longest input worth trying: a few frames, a rule file a bit larger
  # than the shipped one, a few hundred CSV rows.
  opts=()
  case $t in
    fuzz_frame | fuzz_request) opts+=(-max_len=8192 "-dict=$here/request.dict") ;;
    fuzz_rules) opts+=(-max_len=32768 "-dict=$here/rules.dict") ;;
    fuzz_csv) opts+=(-max_len=16384 "-dict=$here/csv.dict") ;;
    fuzz_record) opts+=(-max_len=4096 "-dict=$here/request.dict") ;;
  esac
  if [ -n "$runs" ]; then
    opts+=(-runs="$runs")
  fi
  work=$scratch/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  # libFuzzer writes what it finds into the first directory only.
  dirs=("$work/corpus" "$here/corpus/$t")
  if [ -d "$here/regressions/$t" ]; then
    dirs+=("$here/regressions/$t")
  fi
  cmd=("${nice[@]}" "$bin" "${opts[@]}" -max_total_time="$seconds" -timeout=10
    -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dirs[@]}")
  echo "$t: ${cmd[*]}" | tee "$work/log"

  start=$(date +%s)
  rc=0
  (cd "$work" && UBSAN_OPTIONS=print_stacktrace=1 "${cmd[@]}") >>"$work/log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work/log" | tail -n 1 || true)
  printf '%-13s %12s execs in %5ss (%s/s) %s\n' "$t" "${execs:-?}" "$elapsed" "${rate:-?}" "$cov"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "---- $t FAILED (exit $rc); the end of its log ($work/log):" >&2
    tail -n 60 "$work/log" >&2
    echo "---- reproducer(s): $(ls -d "$work"/artifacts/* 2>/dev/null | tr '\n' ' ')" >&2
    echo "     save as tests/fuzz/regressions/$t/<name> (tests/fuzz/README.md)" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: crashed: ${failed[*]}; scratch kept in $scratch" >&2
  exit 1
fi
if [ -n "${NBA_FUZZ_KEEP:-}" ]; then
  echo "run.sh: corpora kept in $scratch"
else
  rm -rf "$scratch"
fi
