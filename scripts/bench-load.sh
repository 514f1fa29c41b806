#!/usr/bin/env bash
# Load benchmark (issue 11): bench/load.py plays HAProxies against one check
# port served by the real xinetd and by the real systemd-socket-activate,
# each spawning, as the pgsqlchk user: the C floor (bench/baseline.c), the
# release binary without the cache, and with it (TTL 1s). Loopback only.
#
#   scripts/bench-load.sh BINARY        (make bench-load)
#
# Environment: BENCH_LOAD_RATE (200) checks a second, BENCH_LOAD_SECONDS (10)
# per run (each run <= 20 s), BENCH_LOAD_PORT (39290); BENCH_RUN_DIR
# (/tmp/pgsqlchk-bench-load), BENCH_PRIMARY_PORT (55452) and
# BENCH_STANDBY_PORT (55453) place a cluster of its own.
#
# CPU per check is /proc accounting: the supervisor reaps every check, so
# the growth of its cutime + cstime is the checks' CPU; the postmaster reaps
# every backend, so the growth of its cutime + cstime is the backends'. Both
# are summed and divided by the complete answers. Sessions a second come from
# pg_stat_database.sessions. A benchmark, not a test: not part of make test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly RATE=${BENCH_LOAD_RATE:-200} SECONDS_PER_RUN=${BENCH_LOAD_SECONDS:-10} PORT=${BENCH_LOAD_PORT:-39290}
readonly CHECK_USER=pgsqlchk
export PGSQLCHK_RUN_DIR=${BENCH_RUN_DIR:-/tmp/pgsqlchk-bench-load}
export PGSQLCHK_PRIMARY_PORT=${BENCH_PRIMARY_PORT:-55452}
export PGSQLCHK_STANDBY_PORT=${BENCH_STANDBY_PORT:-55453}
# shellcheck source=scripts/common.sh
. "$ROOT/scripts/common.sh"

(($# == 1)) || die "usage: scripts/bench-load.sh BINARY"
((EUID == 0)) || die "run as root (the checks run as $CHECK_USER)"
((SECONDS_PER_RUN <= 20)) || die "BENCH_LOAD_SECONDS must be at most 20"
bash "$ROOT/scripts/deps.sh" bench cluster e2e build
id "$CHECK_USER" >/dev/null 2>&1 ||
  useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin --user-group "$CHECK_USER"

WORK=$(mktemp -d /tmp/pgsqlchk-bench-load.XXXXXX)
chmod 755 "$WORK"
SERVER_PID=
cleanup() {
  [[ -z $SERVER_PID ]] || stop_process "$SERVER_PID"
  bash "$ROOT/scripts/cluster.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

bash "$ROOT/scripts/cluster.sh" start >"$WORK/cluster.log" 2>&1 || die "the cluster did not start" "$WORK/cluster.log"
# shellcheck source=/dev/null
. "$PGSQLCHK_RUN_DIR/env"
install -m 755 "$1" "$WORK/pgsqlchk"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
gcc -O2 $(pkg-config --cflags libpq) -o "$WORK/baseline" "$ROOT/bench/baseline.c" $(pkg-config --libs libpq)
readonly CONNECTION=(-h "$PGSQLCHK_SOCKET_DIR" -p "$PGSQLCHK_PRIMARY_PORT" -U "$CHECK_USER" -d postgres)

sessions() {
  "$PGSQLCHK_PG_BIN/psql" -XAtq -h "$PGSQLCHK_SOCKET_DIR" -p "$PGSQLCHK_PRIMARY_PORT" -U "$CHECK_USER" -d postgres \
    -c "SELECT sum(sessions) FROM pg_catalog.pg_stat_database"
}
# Clock ticks of reaped children (cutime + cstime) of PID.
children_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$1/stat"; }
postmaster_pid() { head -n 1 "$PGSQLCHK_RUN_DIR/primary/postmaster.pid"; }

# start_server SUPERVISOR PROGRAM TTL: serves PORT; sets SERVER_PID.
start_server() {
  local supervisor=$1 program=$2 ttl=$3 cache=$WORK/cache
  rm -rf "$cache" && install -d -m 700 -o "$CHECK_USER" -g "$CHECK_USER" "$cache"
  case $supervisor in
    xinetd)
      cat >"$WORK/xinetd.conf" <<END
service pgsqlchk-bench
{
	type = UNLISTED
	port = $PORT
	socket_type = stream
	protocol = tcp
	wait = no
	flags = IPv4 NODELAY
	bind = 127.0.0.1
	user = $CHECK_USER
	group = $CHECK_USER
	server = $program
	server_args = ${CONNECTION[*]}
	passenv =
	env = PGSQLCHK_CACHE_TTL=$ttl PGSQLCHK_CACHE_DIR=$cache
	instances = UNLIMITED
	per_source = UNLIMITED
	cps = 100000 1
	log_on_success =
	log_on_failure =
}
END
      setsid xinetd -dontfork -f "$WORK/xinetd.conf" -pidfile "$WORK/xinetd.pid" </dev/null >"$WORK/xinetd.log" 2>&1 &
      SERVER_PID=$!
      local tries=100
      until port_is_listening "$PORT"; do ((tries-- > 0)) || die "xinetd did not listen" "$WORK/xinetd.log"; sleep 0.05; done
      ;;
    systemd)
      SERVER_PID=$(start_activator "$PORT" "$WORK/activator.log" -E "PGSQLCHK_CACHE_TTL=$ttl" -E "PGSQLCHK_CACHE_DIR=$cache" \
        setpriv --reuid="$CHECK_USER" --regid="$CHECK_USER" --clear-groups --no-new-privs -- "$program" "${CONNECTION[@]}")
      ;;
  esac
}

hz=$(getconf CLK_TCK)
printf '%-9s %-22s %9s %8s %8s %7s %11s %10s\n' supervisor program "checks/s" "p50 ms" "p99 ms" errors "sessions/s" "CPU/check"
for supervisor in xinetd systemd; do
  for setup in "C floor|$WORK/baseline|0" "pgsqlchk, no cache|$WORK/pgsqlchk|0" "pgsqlchk, cache 1s|$WORK/pgsqlchk|1s"; do
    IFS='|' read -r label program ttl <<<"$setup"
    start_server "$supervisor" "$program" "$ttl"
    python3 "$ROOT/bench/load.py" "$PORT" 20 1 /primary >/dev/null 2>&1 || true
    sleep 0.3
    s0=$(sessions) c0=$(children_ticks "$SERVER_PID") p0=$(children_ticks "$(postmaster_pid)")
    line=$(python3 "$ROOT/bench/load.py" "$PORT" "$RATE" "$SECONDS_PER_RUN" /primary 2>"$WORK/load.err")
    sleep 0.5
    s1=$(sessions) c1=$(children_ticks "$SERVER_PID") p1=$(children_ticks "$(postmaster_pid)")
    stop_process "$SERVER_PID"
    SERVER_PID=
    IFS=$'\t' read -r _ complete errors achieved p50 p99 <<<"$line"
    cpu=$(awk -v ok="$complete" -v ticks=$((c1 - c0 + p1 - p0)) -v hz="$hz" 'BEGIN { printf "%.3f", ok ? ticks * 1000 / hz / ok : 0 }')
    [[ $label == "C floor" ]] && floor_cpu=$cpu
    awk -v sup="$supervisor" -v label="$label" -v err="$errors" -v rate="$achieved" -v p50="$p50" -v p99="$p99" \
      -v sessions=$((s1 - s0 - 1)) -v secs="$SECONDS_PER_RUN" -v cpu="$cpu" 'BEGIN {
        printf "%-9s %-22s %9.1f %8.2f %8.2f %7d %11.1f %8.2f ms\n", sup, label, rate, p50, p99, err, sessions / secs, cpu }'
    [[ ! -s $WORK/load.err ]] || sed 's/^/    /' "$WORK/load.err"
    if [[ $ttl != 0 ]]; then
      # The targets, as ratios from this run: CPU per check against the C
      # floor's, sessions a second against 1/TTL, and no error.
      awk -v sup="$supervisor" -v cpu="$cpu" -v floor="${floor_cpu:-0}" -v err="$errors" \
        -v sessions=$((s1 - s0 - 1)) -v secs="$SECONDS_PER_RUN" -v ttl="${ttl%s}" 'BEGIN {
          ratio = floor > 0 ? cpu / floor : 0
          cpu_verdict = (ratio > 0 && ratio <= 0.25) ? "PASS" : "MISS"
          session_verdict = (sessions / secs <= 1 / ttl) ? "PASS" : "MISS"
          error_verdict = (err == 0) ? "PASS" : "MISS"
          printf "%-9s cache / C floor CPU per check %.2fx %s (target <= 0.25x); sessions %.1f/s %s (target <= %.1f); errors %d %s\n",
            sup, ratio, cpu_verdict, sessions / secs, session_verdict, 1 / ttl, err, error_verdict }'
    fi
  done
done
