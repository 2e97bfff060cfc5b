#!/usr/bin/env bash
# compare.sh - nbad against the Redis + Lua peer and the ceiling server, back
# to back on the same data, with the same load generator, and the ratios the
# performance targets speak of. See loadtest/README.md, "compare.sh".
#
#   loadtest/compare.sh [--customers 1000000] [--duration 10] [--warmup 2]
#                       [--threads 2] [--client-threads 1] [--rate 5000]
#                       [--out DIR] [--data DIR] [--build DIR] [--port-base 27411]
#                       [--parity 200] [--settle 10] [--rounds 1] [--no-install]
#   loadtest/compare.sh --report DIR     the table again, from an earlier run's DIR
#
# Everything listens on 127.0.0.1 and every run is bounded in time; the
# servers this script starts are stopped when it ends, however it ends.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CUSTOMERS=1000000
DURATION=10
WARMUP=2
THREADS=2
CLIENT_THREADS=1
RATE=5000
OUT=""
DATA=""
BUILD="$ROOT/build"
PORT_BASE=27411
PARITY=200
SETTLE=10
ROUNDS=1
INSTALL=1
REPORT_ONLY=0

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
options:
  --customers N       customers nbagen writes and nbaload asks for (1000000)
  --duration S        measured seconds of every run (10)
  --warmup S          seconds of load before each run is measured (2)
  --threads N         worker threads of nbad and nbaceiling (2)
  --client-threads N  nbaload threads, the same for every system (1)
  --rate R            requests/s of the 4-connection latency runs (5000)
  --out DIR           where the nbaload --json outputs, logs and summary go
                      (./compare-results/<date>-<time>)
  --data DIR          data set directory, reused when complete; nbad's state
                      there (DIR/db/state) is removed before each comparison
                      (${TMPDIR:-/tmp}/nba-compare-<customers>)
  --build DIR         CMake build directory, configured and built here (build/)
  --port-base P       ports P..P+3: nbad, nbaceiling, nbaceiling --no-lookup, Redis
  --settle S          seconds between loading Redis and the next run (10)
  --rounds N          every run N times, round after round; the ratios are
                      then each round's, and their medians are judged (1)
  --parity N          contacts checked for identical decisions first, 0 = skip (200)
  --no-install        do not apt-get install redis-server when it is missing
  --report DIR        print the table and ratios of the runs in DIR, run nothing
EOF
}

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

positive() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 takes a positive whole number, not '$2'"; }
seconds() { [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 takes seconds, not '$2'"; }

while [[ $# -gt 0 ]]; do
    opt=$1
    [[ $opt == --help || $opt == -h ]] && { usage; exit 0; }
    [[ $opt == --no-install ]] && { INSTALL=0; shift; continue; }
    [[ $# -ge 2 ]] || die "$opt needs a value (see --help)"
    val=$2
    case $opt in
    --customers) positive "$opt" "$val"; CUSTOMERS=$val ;;
    --duration) seconds "$opt" "$val"; DURATION=$val ;;
    --warmup) seconds "$opt" "$val"; WARMUP=$val ;;
    --threads) positive "$opt" "$val"; THREADS=$val ;;
    --client-threads) positive "$opt" "$val"; CLIENT_THREADS=$val ;;
    --rate) positive "$opt" "$val"; RATE=$val ;;
    --out) OUT=$val ;;
    --data) DATA=$val ;;
    --build) BUILD=$val ;;
    --port-base) positive "$opt" "$val"; PORT_BASE=$val ;;
    --settle) seconds "$opt" "$val"; SETTLE=$val ;;
    --rounds) positive "$opt" "$val"; ROUNDS=$val ;;
    --parity) [[ $val =~ ^[0-9]+$ ]] || die "--parity takes a count"; PARITY=$val ;;
    --report) OUT=$val; REPORT_ONLY=1 ;;
    *) usage >&2; die "unknown option $opt" ;;
    esac
    shift 2
done

# ---- the report
# A run that failed (nbaload timed out, crashed, or never ran) leaves an
# empty or missing file: its figures are "n/a", and so is every ratio and
# median they would feed, rather than a zero that passes a "<=" target.
field() { # file key: the first number under that key in nbaload's JSON, or n/a
    local v=""
    [[ -s $1 ]] && v=$(sed -n "s/.*\"$2\": \([-0-9.eE+]*\).*/\1/p" "$1" | head -1)
    echo "${v:-n/a}"
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "n/a" || b == "n/a" || b + 0 <= 0) print "n/a"; else printf "%.2f", a / b }'
}
whole() { # a number without decimals, or n/a
    awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.0f", v }'
}
verdict() { # value op target
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v == "n/a") { print "n/a"; exit }
        ok = op == ">=" ? v >= t : op == "<" ? v < t : v <= t; print ok ? "met" : "NOT met" }'
}
us() { # nanoseconds as microseconds, or n/a
    awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.1f", v / 1000 }'
}
# Server and client CPU per answer of run $2 in directory $1, in us, warmup
# included (run_cpu), or n/a.
cpu_per_answer() { # directory name
    local cpu="" answered warmup
    [[ -s $1/$2.cpu ]] && cpu=$(cat "$1/$2.cpu")
    answered=$(field "$1/$2.json" answered)
    warmup=$(field "$1/$2.json" warmup)
    awk -v c="${cpu:-n/a n/a}" -v a="$answered" -v w="$warmup" 'BEGIN {
        split(c, t, " ")
        if (t[1] == "n/a" || t[2] == "n/a" || a == "n/a" || w == "n/a" || a + w <= 0) print "n/a"
        else printf "%.3f", (t[1] + t[2]) * 1e6 / (a + w) }'
}
# The figures the targets speak of, from the runs in directory $1, one a
# line: nbad16 r_redis r_ceil16 r_ceil1 r_p50 r_ping ev_fc in_p50 in_p99
# (those two: nbad's decision time at 50x16, from its status, in us)
# r_cpu16 (nbaceiling's CPU per answer at 50x16 over nbad's).
metrics() {
    local d=$1 ev16 fc16 redis16 nbad16 p50_floor
    nbad16=$(field "$d/d-50x16-nbad.json" throughput_rps)
    ev16=$(field "$d/d-50x16-redis-evalsha.json" throughput_rps)
    fc16=$(field "$d/d-50x16-redis-fcall.json" throughput_rps)
    redis16=$(awk -v a="$ev16" -v b="$fc16" 'BEGIN {
        if (a == "n/a") print b; else if (b == "n/a") print a; else print (a + 0 > b + 0) ? a : b }')
    p50_floor=$(field "$d/a-floor-ceiling-no-lookup.json" p50)
    printf "%s\n" "$nbad16" "$(ratio "$nbad16" "$redis16")" \
        "$(ratio "$nbad16" "$(field "$d/d-50x16-ceiling.json" throughput_rps)")" \
        "$(ratio "$(field "$d/c-50x1-nbad.json" throughput_rps)" \
            "$(field "$d/c-50x1-ceiling.json" throughput_rps)")" \
        "$(ratio "$(field "$d/b-moderate-nbad.json" p50)" "$p50_floor")" \
        "$(ratio "$(field "$d/a-floor-nbad-ping.json" p50)" "$p50_floor")" \
        "$(ratio "$ev16" "$fc16")" \
        "$(us "$(field "$d/d-50x16-nbad-status.json" p50_ns)")" \
        "$(us "$(field "$d/d-50x16-nbad-status.json" p99_ns)")" \
        "$(ratio "$(cpu_per_answer "$d" d-50x16-ceiling)" "$(cpu_per_answer "$d" d-50x16-nbad)")"
}
median() { # numbers...: the median of those that are not n/a (n/a when none is)
    printf "%s\n" "$@" | { grep -v '^n/a$' || true; } | sort -g | awk '{ v[NR] = $1 }
        END { if (!NR) { print "n/a"; exit }
              m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              print (m == int(m) ? m : sprintf("%.2f", m)) }'
}
table() { # directory: every run's answers/s, p50, p99, errors
    local f n
    printf "%-34s %12s %10s %10s %8s\n" "scenario / system" "answers/s" "p50 us" "p99 us" "errors"
    for f in "$1"/[abcd]-*.json; do
        [[ -e $f && $f != *-status.json ]] || continue
        n=$(basename "$f" .json)
        printf "%-34s %12s %10s %10s %8s\n" "$n" "$(whole "$(field "$f" throughput_rps)")" \
            "$(field "$f" p50)" "$(field "$f" p99)" "$(field "$f" total)"
    done
}
report() {
    local r dirs=() m nbad16=() r_redis=() r_ceil16=() r_ceil1=() r_p50=() r_ping=() ev_fc=()
    local in_p50=() in_p99=() r_cpu16=()
    cat "$OUT/setup.txt"
    if [[ -d $OUT/round-1 ]]; then
        # round-2 before round-10
        while IFS= read -r r; do dirs+=("$r"); done < <(printf "%s\n" "$OUT"/round-* | sort -V)
    else
        dirs=("$OUT")
    fi
    for r in "${dirs[@]}"; do
        echo
        [[ ${#dirs[@]} -gt 1 ]] && echo "$(basename "$r"):"
        table "$r"
        mapfile -t m < <(metrics "$r")
        nbad16+=("${m[0]}") r_redis+=("${m[1]}") r_ceil16+=("${m[2]}") r_ceil1+=("${m[3]}")
        r_p50+=("${m[4]}") r_ping+=("${m[5]}") ev_fc+=("${m[6]}") in_p50+=("${m[7]}")
        in_p99+=("${m[8]}") r_cpu16+=("${m[9]}")
    done
    echo
    local what="measured"
    if [[ ${#dirs[@]} -gt 1 ]]; then
        what="median"
        printf "%-8s %12s %10s %10s %10s %10s %10s %12s\n" "round" "50x16 nbad" "/Redis" "/ceiling" \
            "by CPU" "50x1 /ceil" "4conn p50" "inside us"
        for r in "${!dirs[@]}"; do
            printf "%-8s %12s %10s %10s %10s %10s %10s %12s\n" \
                "$(basename "${dirs[r]}" | sed 's/round-//')" "$(whole "${nbad16[r]}")" \
                "${r_redis[r]}" "${r_ceil16[r]}" "${r_cpu16[r]}" "${r_ceil1[r]}" "${r_p50[r]}" \
                "${in_p50[r]}/${in_p99[r]}"
        done
        echo
    fi
    local v
    printf "%-58s %10s %8s %s\n" "target" "$what" "wanted" ""
    v=$(median "${nbad16[@]}")
    printf "%-58s %10s %8s %s\n" "50x16: nbad decisions/s" "$(whole "$v")" ">=400000" \
        "$(verdict "$v" ">=" 400000)"
    v=$(median "${r_redis[@]}")
    printf "%-58s %10s %8s %s\n" "50x16: nbad / Redis+Lua (the faster of EVALSHA, FCALL)" \
        "$v" ">=3" "$(verdict "$v" ">=" 3)"
    v=$(median "${r_ceil16[@]}")
    printf "%-58s %10s %8s %s\n" "50x16: nbad / nbaceiling" "$v" ">=0.60" "$(verdict "$v" ">=" 0.60)"
    v=$(median "${r_ceil1[@]}")
    printf "%-58s %10s %8s %s\n" "50x1: nbad / nbaceiling" "$v" ">=0.85" "$(verdict "$v" ">=" 0.85)"
    v=$(median "${r_p50[@]}")
    printf "%-58s %10s %8s %s\n" "4 conn at ${RATE:-?}/s: nbad p50 / loopback round trip p50" "$v" \
        "<=1.20" "$(verdict "$v" "<=" 1.20)"
    v=$(median "${in_p50[@]}")
    printf "%-58s %10s %8s %s\n" "50x16: decision time inside nbad, p50 us" "$v" "<5" \
        "$(verdict "$v" "<" 5)"
    v=$(median "${in_p99[@]}")
    printf "%-58s %10s %8s %s\n" "50x16: decision time inside nbad, p99 us" "$v" "<20" \
        "$(verdict "$v" "<" 20)"
    echo
    echo "for reference ($what): nbad Ping p50 / loopback round trip p50 = $(median "${r_ping[@]}")," \
        "Redis EVALSHA / FCALL at 50x16 = $(median "${ev_fc[@]}"),"
    echo "  50x16 by CPU per answer (server + client, warmup included): nbad / nbaceiling =" \
        "$(median "${r_cpu16[@]}")"
}

OUT=${OUT:-$PWD/compare-results/$(date +%Y%m%d-%H%M%S)}
if [[ $REPORT_ONLY == 1 ]]; then
    [[ -f $OUT/setup.txt ]] || die "$OUT holds no compare.sh run"
    first=$OUT
    [[ -d $OUT/round-1 ]] && first=$OUT/round-1
    RATE=$(sed -n 's/.*"rate": \([0-9.]*\).*/\1/p' "$first/b-moderate-nbad.json" 2>/dev/null |
        head -1)
    RATE=${RATE%.0}
    report
    exit 0
fi
DATA=${DATA:-${TMPDIR:-/tmp}/nba-compare-$CUSTOMERS}
mkdir -p "$OUT" "$DATA"
OUT=$(cd "$OUT" && pwd)
DATA=$(cd "$DATA" && pwd)
P_NBAD=$PORT_BASE
P_CEIL=$((PORT_BASE + 1))
P_FLOOR=$((PORT_BASE + 2))
P_REDIS=$((PORT_BASE + 3))
LUA="$ROOT/loadtest/peers/redis/checkin.lua"
RUN_LIMIT=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", d + w + 30 }')

say() { echo "== $*" >&2; }

# ---- cleanup: only what this script started
PIDS=()
REDIS_STARTED=0
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $REDIS_STARTED == 1 ]]; then
        redis-cli -p "$P_REDIS" shutdown nosave >/dev/null 2>&1 ||
            { [[ -f $OUT/redis.pid ]] && kill "$(cat "$OUT/redis.pid")" 2>/dev/null; } || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$P_NBAD" "$P_CEIL" "$P_FLOOR" "$P_REDIS"; do
    port_free "$p" || die "port $p is in use: choose other ports with --port-base"
done

# ---- build, as a user would
say "building into $BUILD"
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$OUT/build.log" 2>&1 ||
        { tail -20 "$OUT/build.log" >&2; die "cmake failed (see $OUT/build.log)"; }
fi
cmake --build "$BUILD" -j2 --target nbad nbactl nbagen nbaload nbaceiling nbaredisload \
    >>"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; die "build failed (see $OUT/build.log)"; }
NBAD=$BUILD/nbad
NBACTL=$BUILD/nbactl
NBAGEN=$BUILD/loadtest/nbagen
NBALOAD=$BUILD/loadtest/nbaload
CEILING=$BUILD/loadtest/nbaceiling
REDISLOAD=$BUILD/loadtest/nbaredisload

# ---- Redis
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    [[ $INSTALL == 1 ]] || die "redis-server is not installed (and --no-install was given)"
    say "installing redis-server"
    { apt-get install -y redis-server || { apt-get update && apt-get install -y redis-server; }; } \
        >"$OUT/apt.log" 2>&1 || die "cannot install redis-server (see $OUT/apt.log; root needed)"
fi

# ---- data: nbagen once per data directory, loaded into both stores
if [[ ! -f $DATA/customers.csv || ! -f $DATA/incidents.csv ]]; then
    say "generating $CUSTOMERS customers into $DATA"
    "$NBAGEN" --customers "$CUSTOMERS" --out "$DATA" >&2
fi
# loaded again when the CSVs or nbactl (and so perhaps the layout) are newer
if [[ ! -f $DATA/db.loaded || $DATA/customers.csv -nt $DATA/db.loaded ||
    $NBACTL -nt $DATA/db.loaded ]]; then
    say "loading nbad's database"
    rm -f "$DATA/db.loaded"
    "$NBACTL" load --db "$DATA/db" --customers "$DATA/customers.csv" \
        --incidents "$DATA/incidents.csv" >&2
    "$NBACTL" db prune --db "$DATA/db" --keep 0 >&2 # the generations loaded before
    touch "$DATA/db.loaded"
fi

wait_until() { # seconds command...: runs command until it succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# The peers keep no contact history, so nbad runs as a read-only replica
# (record_contacts off): every contact is decided from the warehouse data
# alone, as the Lua script decides it. What recording costs is measured
# apart (BENCHMARKS.md, "Decisions that write"). A state left in the data
# directory by such a measurement would make every decision here read a
# contact history the peers have not got: each comparison starts without.
rm -rf "$DATA/db/state"
say "starting nbad (--threads $THREADS, read-only), nbaceiling and nbaceiling --no-lookup"
NBAD_PID=""
start_nbad() {
    "$NBAD" --db "$DATA/db" --rules "$ROOT/rules/airline-checkin.yaml" --listen 127.0.0.1 \
        --port "$P_NBAD" --threads "$THREADS" --record-contacts=false 2>>"$OUT/nbad.log" &
    NBAD_PID=$!
    PIDS+=("$NBAD_PID")
}
# nbad's decision-time histogram counts from its start: restarted before
# the 50x16 run, its status afterwards holds that run's decisions alone.
restart_nbad() {
    local pid kept=()
    kill "$NBAD_PID" 2>/dev/null || true
    wait "$NBAD_PID" 2>/dev/null || true
    # the cleanup must not signal a process that may since have its pid
    for pid in "${PIDS[@]}"; do
        [[ $pid == "$NBAD_PID" ]] || kept+=("$pid")
    done
    PIDS=("${kept[@]}")
    start_nbad
    wait_until 30 "$NBACTL" ping --port "$P_NBAD" || die "nbad did not come back (see $OUT/nbad.log)"
}
: >"$OUT/nbad.log"
start_nbad
"$CEILING" --db "$DATA/db" --port "$P_CEIL" --threads "$THREADS" 2>"$OUT/nbaceiling.log" &
CEIL_PID=$!
PIDS+=("$CEIL_PID")
"$CEILING" --no-lookup --port "$P_FLOOR" --threads "$THREADS" 2>"$OUT/nbaceiling-no-lookup.log" &
PIDS+=($!)
for p in "$P_NBAD" "$P_CEIL" "$P_FLOOR"; do
    wait_until 30 "$NBACTL" ping --port "$p" || die "nothing answers on port $p (see $OUT/*.log)"
done

# The same file as a Redis function: the part above "-- ---- per call" is
# the library, loaded once; the rest is the function's body.
function_library() {
    echo '#!lua name=nbapeer'
    sed '/^-- ---- per call$/,$d' "$LUA"
    echo "redis.register_function('checkin', function(KEYS, ARGV)"
    sed -n '/^-- ---- per call$/,$p' "$LUA"
    echo 'end)'
}

# Redis starts after the latency runs: loading 3 million keys into it
# leaves the kernel busy for some seconds (page faults, compaction), which
# showed as millisecond stalls in whatever ran next. It then gets SETTLE
# seconds before anything is timed.
start_redis() {
    say "starting Redis on port $P_REDIS and loading the same data"
    redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$OUT" --pidfile "$OUT/redis.pid" --logfile "$OUT/redis.log" ||
        die "redis-server did not start (see $OUT/redis.log)"
    REDIS_STARTED=1
    wait_until 10 redis-cli -p "$P_REDIS" ping || die "Redis does not answer (see $OUT/redis.log)"
    redis-cli -p "$P_REDIS" flushall >/dev/null
    "$REDISLOAD" --customers "$DATA/customers.csv" --incidents "$DATA/incidents.csv" |
        redis-cli -p "$P_REDIS" --pipe >"$OUT/redis-load.log" 2>&1
    grep -q "errors: 0," "$OUT/redis-load.log" || die "loading Redis failed (see $OUT/redis-load.log)"
    SHA=$(redis-cli -p "$P_REDIS" script load "$(cat "$LUA")")
    [[ $SHA =~ ^[0-9a-f]{40}$ ]] || die "SCRIPT LOAD failed: $SHA"
    redis-cli -p "$P_REDIS" function load replace "$(function_library)" >/dev/null ||
        die "FUNCTION LOAD failed"

    if [[ $PARITY -gt 0 ]]; then
        if command -v python3 >/dev/null; then
            say "checking that the peer decides as nbad ($PARITY contacts)"
            python3 "$ROOT/loadtest/peers/redis/parity.py" --nbactl "$NBACTL" --nbad-port "$P_NBAD" \
                --redis-port "$P_REDIS" --sha "$SHA" --customers-csv "$DATA/customers.csv" \
                --count "$PARITY" | tee "$OUT/parity.txt" >&2 ||
                die "the Redis peer does not decide as nbad (see $OUT/parity.txt)"
        else
            say "python3 is missing: the parity check is skipped"
        fi
    fi
    sleep "$SETTLE"
}

# ---- the runs
cat >"$OUT/setup.txt" <<EOF
nbad vs its peers: $CUSTOMERS customers, $DURATION s per run after $WARMUP s of warmup,
nbad and nbaceiling --threads $THREADS, nbaload --threads $CLIENT_THREADS, $(nproc) CPUs, $(date -u +%FT%TZ)
$ROUNDS round(s): every run once per round, the rounds one after the other
EOF
COMMON=(--customers "$CUSTOMERS" --duration "$DURATION" --warmup "$WARMUP"
    --threads "$CLIENT_THREADS" --json)
run() { # name port nbaload-options...
    local name=$1 port=$2
    shift 2
    say "$name"
    timeout "$RUN_LIMIT" "$NBALOAD" --port "$port" "${COMMON[@]}" "$@" >"$RUN_DIR/$name.json" ||
        echo "compare.sh: $name: nbaload exit $? (errors counted in $RUN_DIR/$name.json)" >&2
}
# The CPU a process has used so far, in seconds (every thread).
cpu_seconds() { # pid
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null ||
        echo n/a
}
# run, and what the run cost in CPU: the server's (pid) and nbaload's, in
# $RUN_DIR/$name.cpu as "server_s client_s". With the machine saturated
# the ratio of two systems' rates is that of their CPU per answer; where
# the two ratios part, one of the runs did not have the cores to itself.
run_cpu() { # name pid port nbaload-options...
    local name=$1 pid=$2 before after client TIMEFORMAT='%3U %3S'
    shift 2
    before=$(cpu_seconds "$pid")
    client=$({ time run "$name" "$@" 2>&3; } 3>&2 2>&1)
    after=$(cpu_seconds "$pid")
    awk -v a="$before" -v b="$after" -v c="$client" 'BEGIN {
        split(c, t, " "); if (a == "n/a" || b == "n/a") print "n/a", t[1] + t[2]
        else printf "%.2f %.3f\n", b - a, t[1] + t[2] }' >"$RUN_DIR/$name.cpu"
}
LOW=(--connections 4 --pipeline 1 --rate "$RATE")
for ((round = 1; round <= ROUNDS; round++)); do
    RUN_DIR=$OUT
    if [[ $ROUNDS -gt 1 ]]; then
        RUN_DIR=$OUT/round-$round
        mkdir -p "$RUN_DIR"
        say "round $round of $ROUNDS"
    fi
    run a-floor-ceiling-no-lookup "$P_FLOOR" "${LOW[@]}"
    run a-floor-nbad-ping "$P_NBAD" "${LOW[@]}" --ping
    run b-moderate-nbad "$P_NBAD" "${LOW[@]}"
    [[ $round == 1 ]] && start_redis
    for shape in "c 1" "d 16"; do
        set -- $shape
        CONC=(--connections 50 --pipeline "$2")
        [[ $1 == d ]] && restart_nbad
        run_cpu "$1-50x$2-nbad" "$NBAD_PID" "$P_NBAD" "${CONC[@]}"
        [[ $1 == d ]] && { "$NBACTL" status --port "$P_NBAD" --json >"$RUN_DIR/d-50x16-nbad-status.json" ||
            echo "compare.sh: nbactl status failed after the 50x16 run" >&2; }
        run_cpu "$1-50x$2-ceiling" "$CEIL_PID" "$P_CEIL" "${CONC[@]}"
        run "$1-50x$2-redis-evalsha" "$P_REDIS" "${CONC[@]}" --protocol resp --redis-script-sha "$SHA"
        run "$1-50x$2-redis-fcall" "$P_REDIS" "${CONC[@]}" --protocol resp --redis-function checkin
    done
done

report | tee "$OUT/summary.txt"
echo "raw nbaload outputs, logs and summary.txt: $OUT" >&2
