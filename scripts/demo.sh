#!/usr/bin/env bash
# make demo: a throwaway primary + streaming standby behind xinetd and HAProxy
# on 127.0.0.1, what each piece answers, a failover with its measured time,
# then everything cleaned up, also on Ctrl-C. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

export PGSQLCHK_RUN_DIR=${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-demo}
export PGSQLCHK_BINARY=$PWD/.build/release/pgsqlchk
# shellcheck source=scripts/common.sh
. scripts/common.sh
readonly LOG=$PGSQLCHK_RUN_DIR.log

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
quietly() { "$@" >>"$LOG" 2>&1 || { echo "failed: $* (see $LOG)"; tail -n 15 "$LOG"; exit 1; }; }

cleanup() {
  trap - EXIT INT TERM
  step "Cleaning up"
  bash scripts/stack.sh stop >>"$LOG" 2>&1 || true
  bash scripts/cluster.sh stop >>"$LOG" 2>&1 || true
  local busy
  busy=$(ss -Htln | awk '{print $4}' | grep -E ":($PRIMARY_PORT|$STANDBY_PORT|$RW_PORT|$RO_PORT|$STATS_PORT|$PRIMARY_CHECK_PORT|$STANDBY_CHECK_PORT|$PRIMARY_AGENT_PORT|$STANDBY_AGENT_PORT)$" || true)
  if [[ -z $busy ]]; then echo "stopped HAProxy, xinetd, both PostgreSQL nodes; no port left open"; else echo "still listening: $busy"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The real psql binary: Debian's /usr/bin/psql is a Perl wrapper.
sql_through() { "$PGSQLCHK_PG_BIN/psql" -X -At -h 127.0.0.1 -p "$1" -U app -d postgres -c "$2" 2>&1; }
# check_answer PORT PATH: the status code and the body's line ("503 no response
# from server"); a 503's status line carries the same reason.
check_answer() { curl -s -i --max-time 3 "http://127.0.0.1:$1$2" | tr -d '\r' | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p;$p' | paste -sd ' ' -; }
servers() { bash scripts/stack.sh servers | awk '{ server = $1; $1 = ""; printf "  %-34s%s\n", server, $0 }'; }
node_of_port() { [[ $1 == "$PGSQLCHK_PRIMARY_PORT" ]] && echo "node1 (port $1)" || echo "node2 (port $1)"; }

: >"$LOG"
step "Installing what is missing, building the release binary"
quietly bash scripts/deps.sh build cluster e2e
quietly make --no-print-directory build
echo "built $PGSQLCHK_BINARY ($(make --no-print-directory version))"
if ldd "$PGSQLCHK_BINARY" | grep -qE 'swift|stdc\+\+'; then
  echo "  it needs the Swift or C++ runtime: the static link flags did not apply"
else
  echo "  ldd: libpq and libc, no Swift or C++ runtime: it runs where no toolchain is installed"
fi

step "Starting node1 (primary) and node2 (streaming standby) on 127.0.0.1"
quietly bash scripts/cluster.sh start
# shellcheck disable=SC1091 # written by cluster.sh start
. "$PGSQLCHK_RUN_DIR/env"
echo "node1 :$PGSQLCHK_PRIMARY_PORT, node2 :$PGSQLCHK_STANDBY_PORT"

step "Starting xinetd (one check port per node) and HAProxy from the shipped samples"
quietly bash scripts/stack.sh start
# shellcheck disable=SC1091 # written by stack.sh start
. "$PGSQLCHK_RUN_DIR/stack.env"
echo "checks: node1 :$PRIMARY_CHECK_PORT, node2 :$STANDBY_CHECK_PORT; HAProxy: read-write :$RW_PORT, read-only :$RO_PORT, stats :$STATS_PORT"

step "What each node's check answers (curl -i http://127.0.0.1:PORT/...)"
for path in / /replica '/replica?lag=16MB' /health; do
  printf '  %-18s node1: %-32s node2: %s\n' "$path" "$(check_answer "$PRIMARY_CHECK_PORT" "$path")" "$(check_answer "$STANDBY_CHECK_PORT" "$path")"
done
echo "  /status on node2:"
curl -s --max-time 3 "http://127.0.0.1:$STANDBY_CHECK_PORT/status" | sed 's/^/    /'

step "Where HAProxy routes"
quietly bash scripts/cluster.sh psql primary -c "CREATE TABLE demo (at timestamptz DEFAULT now()); GRANT SELECT, INSERT ON demo TO app"
echo "  :$RW_PORT (read-write) -> $(node_of_port "$(sql_through "$RW_PORT" "SELECT inet_server_port()")"), in recovery: $(sql_through "$RW_PORT" "SELECT pg_is_in_recovery()")"
echo "  :$RO_PORT (read-only)  -> $(node_of_port "$(sql_through "$RO_PORT" "SELECT inet_server_port()")"), in recovery: $(sql_through "$RO_PORT" "SELECT pg_is_in_recovery()")"
echo "  HAProxy's view (stats CSV):"
servers

step "Failover: node1 crashes (pg_ctl stop -m immediate), node2 is promoted"
# Replication is asynchronous: let node2 replay the demo table first, or the
# crash may take it along.
lsn=$(bash scripts/cluster.sh psql primary -At -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 100); do
  [[ $(bash scripts/cluster.sh psql standby -At -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'") == t ]] && break
  sleep 0.1
done
start=$(date +%s.%N)
quietly bash scripts/cluster.sh pg_ctl primary stop -m immediate
quietly bash scripts/cluster.sh pg_ctl standby promote -w
promoted=$(date +%s.%N)
attempts=0
until sql_through "$RW_PORT" "INSERT INTO demo DEFAULT VALUES" >/dev/null 2>&1; do
  attempts=$((attempts + 1))
  ((attempts < 400)) || { echo "no write succeeded within 20 s: $(sql_through "$RW_PORT" "INSERT INTO demo DEFAULT VALUES")"; exit 1; }
  sleep 0.05
done
done_at=$(date +%s.%N)
awk -v start="$start" -v promoted="$promoted" -v done_at="$done_at" -v port="$RW_PORT" -v attempts="$attempts" 'BEGIN {
  printf "  promoted after %.2f s; first write through :%s after %.2f s (%d failed attempts before it)\n",
    promoted - start, port, done_at - start, attempts }'
echo "  :$RW_PORT now -> $(node_of_port "$(sql_through "$RW_PORT" "SELECT inet_server_port()")")"
printf '  checks now: node1: %s   node2: %s\n' "$(check_answer "$PRIMARY_CHECK_PORT" /)" "$(check_answer "$STANDBY_CHECK_PORT" /)"
sleep 2
echo "  HAProxy's view:"
servers
