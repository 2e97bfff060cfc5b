#!/usr/bin/env bash
# Runs the libFuzzer targets one after the other, each for SECONDS (default
# 30), and prints how many inputs each one executed. Exits non-zero when any
# target crashed; its reproducer is kept and its path printed.
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
#   tests/fuzz/run.sh              every target, 30 s each
#   tests/fuzz/run.sh 1800         a long run: 30 minutes each
#   tests/fuzz/run.sh 60 fuzz_csv  one target
#
# Build the targets first (tests/fuzz/README.md):
#   CC=clang cmake -S . -B build-fuzz -DNBA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-fuzz -j --target fuzz_targets
#
# Environment: NBA_FUZZ_BUILD the build directory (default build-fuzz);
# NBA_FUZZ_KEEP=1 keeps the scratch directory (the grown corpora) even when
# nothing crashed. The seed corpora are copied to the scratch directory, so
# a run never writes into the source tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

seconds=${1:-30}
if [ $# -gt 0 ]; then
  shift
fi
case $seconds in
  '' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 64
    ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_frame fuzz_request fuzz_rules fuzz_csv)
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
    fuzz_frame | fuzz_request) opts+=(-max_len=8192) ;;
    fuzz_rules) opts+=(-max_len=24576 "-dict=$here/rules.dict") ;;
    fuzz_csv) opts+=(-max_len=16384) ;;
  esac
  work=$scratch/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -R "$here/corpus/$t/." "$work/corpus/"
  dirs=("$work/corpus")
  if [ -d "$here/regressions/$t" ]; then
    dirs+=("$here/regressions/$t")
  fi

  start=$(date +%s)
  rc=0
  (cd "$work" && UBSAN_OPTIONS=print_stacktrace=1 "$bin" "${opts[@]}" \
     -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
     -artifact_prefix="$work/artifacts/" "${dirs[@]}") >"$work/log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 || true)
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
