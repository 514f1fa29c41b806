#!/usr/bin/env bash
# xinetd + HAProxy in front of the test cluster (scripts/cluster.sh), both
# configured from the shipped samples xinetd/pgsqlchk and haproxy/haproxy.cfg
# with test addresses, ports and paths substituted. Run as root.
#
#   stack.sh start | stop | status
#   stack.sh restart-haproxy     re-render and restart HAProxy only
#
# Needs a running cluster: sources ${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-run}/env.
# Environment (defaults): PGSQLCHK_BINARY (.build/release/pgsqlchk, copied
# into the run dir, so the checks run without the Swift toolchain),
# PGSQLCHK_RW_PORT (5000), PGSQLCHK_RO_PORT (5001), PGSQLCHK_STATS_PORT (7000),
# PGSQLCHK_PRIMARY_CHECK_PORT (23267), PGSQLCHK_STANDBY_CHECK_PORT (23268),
# PGSQLCHK_HAPROXY_MAXCONN (10: below the test cluster's CONNECTION LIMIT of
# role app), PGSQLCHK_HAPROXY_INTER (the sample's `inter`, e.g. 100ms for
# many checks). `start` writes $RUN/stack.env to source.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly REPOSITORY=${SCRIPT_DIR%/scripts}
readonly RUN=${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-run}
readonly STACK=$RUN/stack
readonly RW_PORT=${PGSQLCHK_RW_PORT:-5000}
readonly RO_PORT=${PGSQLCHK_RO_PORT:-5001}
readonly STATS_PORT=${PGSQLCHK_STATS_PORT:-7000}
readonly PRIMARY_CHECK_PORT=${PGSQLCHK_PRIMARY_CHECK_PORT:-23267}
readonly STANDBY_CHECK_PORT=${PGSQLCHK_STANDBY_CHECK_PORT:-23268}
readonly HAPROXY_MAXCONN=${PGSQLCHK_HAPROXY_MAXCONN:-10}
readonly HAPROXY_INTER=${PGSQLCHK_HAPROXY_INTER:-}
readonly SOURCE_BINARY=${PGSQLCHK_BINARY:-$REPOSITORY/.build/release/pgsqlchk}
# The checks run as this system user, as in production (xinetd/pgsqlchk).
readonly CHECK_USER=pgsqlchk
readonly BINARY=$STACK/bin/pgsqlchk
readonly UP_WAIT_SECONDS=20

die() {
  echo "stack.sh: $1" >&2
  if [[ -n ${2:-} && -s $2 ]]; then
    echo "--- last lines of $2:" >&2
    tail -n 20 "$2" >&2
  fi
  exit 1
}

usage() {
  { echo usage:; sed -n '6,7p' "${BASH_SOURCE[0]}" | sed 's/^#//'; } >&2
  exit 2
}

load_cluster_env() {
  [[ -f $RUN/env ]] || die "no cluster in $RUN: run scripts/cluster.sh start first"
  # shellcheck disable=SC1091 # written by cluster.sh start
  . "$RUN/env"
}

ensure_check_user() {
  id "$CHECK_USER" >/dev/null 2>&1 && return 0
  useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin \
    --user-group "$CHECK_USER" || die "could not create the system user $CHECK_USER"
}

port_is_listening() {
  [[ -n $(ss -Htln "sport = :$1") ]]
}

# A pid from our pidfile, if that process is still the program we started
# (a recycled pid must not make us signal an unrelated process).
live_pid() {
  local pidfile=$1 program=$2 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && grep -qs "$program" "/proc/$pid/cmdline" && echo "$pid"
}

# sed with a check that every expression matched: if the sample changes shape,
# rendering fails loudly instead of silently testing something else.
render() {
  local sample=$1 output=$2 expression
  shift 2
  cp "$sample" "$output"
  for expression in "$@"; do
    # `w /dev/stdout` prints each line the substitution matched, even when it
    # leaves the line as it was (a test port equal to the sample's).
    [[ -n $(sed -E -i "${expression}w /dev/stdout" "$output") ]] ||
      die "rendering $sample: '$expression' matched nothing"
  done
}

render_xinetd() {
  local node=$1 db_port=$2 check_port=$3
  # The sample's user, server_args' -U and the environment stay as shipped;
  # a line per started and finished check lets the tests count them.
  render "$REPOSITORY/xinetd/pgsqlchk" "$STACK/xinetd-$node.conf" \
    "s|^(\s*port\s*=\s*)23267$|\1$check_port|" \
    "s|^(\s*server\s*=\s*).*$|\1$BINARY|" \
    "s|^(\s*server_args\s*=.*)-h /var/run/postgresql -p 5432|\1-h $PGSQLCHK_SOCKET_DIR -p $db_port|" \
    "s|^(\s*only_from\s*=\s*).*$|\1127.0.0.1|" \
    "s|^(\s*log_type\s*=\s*).*$|\1FILE $STACK/xinetd-$node.log|" \
    "s|^(\s*log_on_success\s*=).*$|\1 PID EXIT DURATION|"
}

start_xinetd() {
  local node=$1 check_port=$2 deadline
  port_is_listening "$check_port" && die "port $check_port is in use (set PGSQLCHK_${node^^}_CHECK_PORT)"
  # setsid keeps it out of the caller's process group, so that a test
  # runner's signals do not reach it; setsid may fork, so the daemon's own
  # pidfile, not $!, tells its pid.
  setsid xinetd -dontfork -f "$STACK/xinetd-$node.conf" -pidfile "$STACK/xinetd-$node.pid" \
    -filelog "$STACK/xinetd-$node.log" </dev/null >>"$STACK/xinetd-$node.out" 2>&1 &
  deadline=$((SECONDS + 5))
  until port_is_listening "$check_port" && live_pid "$STACK/xinetd-$node.pid" xinetd >/dev/null; do
    ((SECONDS < deadline)) || die "xinetd for $node is not listening on $check_port" "$STACK/xinetd-$node.log"
    sleep 0.05
  done
}

render_haproxy() {
  local intervals=() server
  [[ -z $HAPROXY_INTER ]] || intervals=("s/ inter 1s fastinter 500ms downinter 500ms / inter $HAPROXY_INTER fastinter $HAPROXY_INTER downinter $HAPROXY_INTER /")
  render "$REPOSITORY/haproxy/haproxy.cfg" "$STACK/haproxy.cfg" \
    "s|^(\s*log) /dev/log |\1 stdout format raw |" \
    "s|^(\s*stats socket) /run/haproxy/admin.sock |\1 $STACK/haproxy.sock |" \
    "s|^(\s*bind) :5000$|\1 127.0.0.1:$RW_PORT|" \
    "s|^(\s*bind) :5001$|\1 127.0.0.1:$RO_PORT|" \
    "s|^(\s*bind) :7000$|\1 127.0.0.1:$STATS_PORT|" \
    "s| maxconn 80$| maxconn $HAPROXY_MAXCONN|" \
    "/192\.0\.2\.21:5432/s|port 23267$|port $PRIMARY_CHECK_PORT|" \
    "/192\.0\.2\.22:5432/s|port 23267$|port $STANDBY_CHECK_PORT|" \
    "s|192\.0\.2\.21:5432|127.0.0.1:$PGSQLCHK_PRIMARY_PORT|" \
    "s|192\.0\.2\.22:5432|127.0.0.1:$PGSQLCHK_STANDBY_PORT|" \
    "${intervals[@]}"
  ! grep -n '^[^#]*192\.0\.2\.' "$STACK/haproxy.cfg" || die "rendered haproxy.cfg still has placeholder addresses"
  haproxy -q -c -f "$STACK/haproxy.cfg" >"$STACK/haproxy-check.log" 2>&1 ||
    die "the rendered haproxy.cfg is invalid" "$STACK/haproxy-check.log"
}

stats_csv() {
  # bash's /dev/tcp: no HTTP client needed. HTTP/1.0, so the server closes.
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/$STATS_PORT" || return 1
  printf 'GET /stats;csv HTTP/1.0\r\n\r\n' >&3
  reply=$(timeout 2 cat <&3) || true
  exec 3<&-
  printf '%s\n' "$reply" | sed -n '/^# pxname/,$p'
}

# "proxy/server STATUS" for every server line.
server_states() {
  stats_csv | awk -F, 'NR > 1 && NF > 20 && $2 != "FRONTEND" && $2 != "BACKEND" { print $1 "/" $2, $18 }'
}

# The servers that should be UP right now: each node's role decides.
expected_up() {
  local node port in_recovery server
  for node in primary standby; do
    [[ $node == primary ]] && server=pg1 || server=pg2
    port=PGSQLCHK_${node^^}_PORT
    in_recovery=$(PGCONNECT_TIMEOUT=3 "$PGSQLCHK_PG_BIN/psql" -X -At -h "$PGSQLCHK_SOCKET_DIR" \
      -p "${!port}" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null) || continue
    if [[ $in_recovery == f ]]; then
      echo "pg_readwrite/$server UP"
    else
      echo "pg_readonly_standbys/$server UP"
    fi
  done
}

start_haproxy() {
  local port deadline states missing
  for port in "$RW_PORT" "$RO_PORT" "$STATS_PORT"; do
    port_is_listening "$port" && die "port $port is in use (see PGSQLCHK_RW_PORT, _RO_PORT, _STATS_PORT)"
  done
  # Foreground master-worker mode, so `log stdout` lands in our log file.
  setsid haproxy -W -db -f "$STACK/haproxy.cfg" -p "$STACK/haproxy.pid" </dev/null >>"$STACK/haproxy.log" 2>&1 &
  deadline=$((SECONDS + UP_WAIT_SECONDS))
  while true; do
    if ! live_pid "$STACK/haproxy.pid" haproxy >/dev/null; then
      ((SECONDS < deadline - UP_WAIT_SECONDS + 5)) || die "haproxy did not start" "$STACK/haproxy.log"
      sleep 0.05
      continue
    fi
    states=$(server_states 2>/dev/null || true)
    missing=$(grep -vxF -f <(printf '%s\n' "$states") <(expected_up) || true)
    [[ -z $missing ]] && break
    ((SECONDS < deadline)) || die "after ${UP_WAIT_SECONDS}s HAProxy still does not report: $missing" "$STACK/haproxy.log"
    sleep 0.2
  done
}

stop_haproxy() {
  local pid
  if pid=$(live_pid "$STACK/haproxy.pid" haproxy); then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid"
  fi
  rm -f "$STACK/haproxy.pid"
}

wait_gone() {
  local pid=$1 tries=100
  while kill -0 "$pid" 2>/dev/null && ((tries-- > 0)); do sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
}

write_stack_env() {
  {
    printf 'export PGSQLCHK_STACK_DIR=%q\n' "$STACK"
    printf 'export PGSQLCHK_RW_PORT=%q\n' "$RW_PORT"
    printf 'export PGSQLCHK_RO_PORT=%q\n' "$RO_PORT"
    printf 'export PGSQLCHK_STATS_PORT=%q\n' "$STATS_PORT"
    printf 'export PGSQLCHK_STATS_URL=%q\n' "http://127.0.0.1:$STATS_PORT/stats;csv"
    printf 'export PGSQLCHK_PRIMARY_CHECK_PORT=%q\n' "$PRIMARY_CHECK_PORT"
    printf 'export PGSQLCHK_STANDBY_CHECK_PORT=%q\n' "$STANDBY_CHECK_PORT"
    printf 'export PGSQLCHK_STACK_BINARY=%q\n' "$BINARY"
    printf 'export PGSQLCHK_HAPROXY_LOG=%q\n' "$STACK/haproxy.log"
  } >"$RUN/stack.env"
}

cmd_start() {
  bash "$SCRIPT_DIR/deps.sh" e2e
  load_cluster_env
  if live_pid "$STACK/haproxy.pid" haproxy >/dev/null; then
    echo "stack already running in $STACK"
    return 0
  fi
  cmd_stop
  # A start that fails half-way leaves nothing running behind it.
  trap cmd_stop EXIT
  [[ -x $SOURCE_BINARY ]] || die "no binary at $SOURCE_BINARY: build it (swift build -c release --static-swift-stdlib) or set PGSQLCHK_BINARY"
  ensure_check_user
  install -d -m 755 "$STACK" "$STACK/bin"
  install -m 755 "$SOURCE_BINARY" "$BINARY"

  render_xinetd primary "$PGSQLCHK_PRIMARY_PORT" "$PRIMARY_CHECK_PORT"
  render_xinetd standby "$PGSQLCHK_STANDBY_PORT" "$STANDBY_CHECK_PORT"
  start_xinetd primary "$PRIMARY_CHECK_PORT"
  start_xinetd standby "$STANDBY_CHECK_PORT"
  render_haproxy
  start_haproxy
  write_stack_env
  trap - EXIT

  echo "stack up: ReadWrite 127.0.0.1:$RW_PORT, ReadOnly 127.0.0.1:$RO_PORT, stats http://127.0.0.1:$STATS_PORT/stats"
  echo "checks: xinetd on :$PRIMARY_CHECK_PORT (primary) and :$STANDBY_CHECK_PORT (standby), running $BINARY as $CHECK_USER; settings: source $RUN/stack.env"
}

cmd_restart_haproxy() {
  load_cluster_env
  [[ -f $RUN/stack.env ]] || die "the stack is not running: run stack.sh start"
  stop_haproxy
  : >"$STACK/haproxy.log"
  render_haproxy
  start_haproxy
  echo "haproxy restarted${HAPROXY_INTER:+ with inter $HAPROXY_INTER}"
}

cmd_stop() {
  local node pid exe
  [[ -d $STACK ]] || { rm -f "$RUN/stack.env"; return 0; }
  stop_haproxy
  for node in primary standby; do
    if pid=$(live_pid "$STACK/xinetd-$node.pid" xinetd); then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid"
    fi
  done
  # Checks still running: exactly the processes executing our copy.
  for exe in /proc/[0-9]*/exe; do
    [[ $(readlink "$exe" 2>/dev/null) == "$BINARY" ]] || continue
    pid=${exe#/proc/}
    kill -KILL "${pid%/exe}" 2>/dev/null || true
  done
  rm -rf "$STACK" "$RUN/stack.env"
}

cmd_status() {
  local node pid state=0
  for node in primary standby; do
    if pid=$(live_pid "$STACK/xinetd-$node.pid" xinetd); then
      echo "xinetd ($node checks): running, pid $pid"
    else
      echo "xinetd ($node checks): not running"
      state=3
    fi
  done
  if pid=$(live_pid "$STACK/haproxy.pid" haproxy); then
    echo "haproxy: running, pid $pid"
    server_states | sed 's/^/  /'
  else
    echo "haproxy: not running"
    state=3
  fi
  return "$state"
}

main() {
  (($# == 1)) || usage
  ((EUID == 0)) || die "run as root (xinetd switches to the $CHECK_USER user)"
  [[ $RUN == /?* ]] || die "PGSQLCHK_RUN_DIR must be an absolute path other than /, not '$RUN'"
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart-haproxy) cmd_restart_haproxy ;;
    *) usage ;;
  esac
}

main "$@"
