#!/usr/bin/env bash
# The check super-server + HAProxy in front of the test cluster
# (scripts/cluster.sh), configured from the shipped samples (xinetd/pgsqlchk,
# xinetd/pgsqlchk-agent or systemd/pgsqlchk.default, and haproxy/haproxy.cfg)
# with test addresses, ports and paths substituted. Run as root.
#
#   stack.sh start | stop | status
#   stack.sh restart-haproxy     re-render and restart HAProxy only
#   stack.sh servers             HAProxy's view: "proxy/server STATUS" lines
#
# Needs a running cluster: sources $PGSQLCHK_RUN_DIR/env.
# Environment (defaults): PGSQLCHK_BINARY (.build/release/pgsqlchk, copied
# into the run dir, so the checks run without the Swift toolchain),
# PGSQLCHK_RW_PORT, _RO_PORT, _STATS_PORT, _PRIMARY_CHECK_PORT,
# _STANDBY_CHECK_PORT, _PRIMARY_AGENT_PORT, _STANDBY_AGENT_PORT (scripts/common.sh),
# PGSQLCHK_SUPERVISOR (xinetd: one xinetd a node serving both services;
# systemd: one `systemd-socket-activate --inetd -a` a port, as
# systemd/pgsqlchk.socket with Accept=yes would),
# PGSQLCHK_PEER_PORT (10000, HAProxy's local peer),
# PGSQLCHK_HAPROXY_MAXCONN (10: below the test cluster's CONNECTION LIMIT of
# role app), PGSQLCHK_HAPROXY_INTER (the sample's `inter`, e.g. 100ms for
# many checks), PGSQLCHK_HAPROXY_EDITS (more sed -E expressions, one a line,
# applied last; each must match, as the others must). `start` writes $RUN/stack.env to source. Each node drains
# while $RUN/stack/maintenance-NODE exists (NODE: primary, standby).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$SCRIPT_DIR/common.sh"
readonly SCRIPT_DIR
readonly REPOSITORY=${SCRIPT_DIR%/scripts}
readonly RUN RW_PORT RO_PORT STATS_PORT PRIMARY_CHECK_PORT STANDBY_CHECK_PORT PRIMARY_AGENT_PORT STANDBY_AGENT_PORT
readonly STACK=$RUN/stack
readonly SUPERVISOR=${PGSQLCHK_SUPERVISOR:-xinetd}
readonly HAPROXY_MAXCONN=${PGSQLCHK_HAPROXY_MAXCONN:-10}
readonly HAPROXY_INTER=${PGSQLCHK_HAPROXY_INTER:-}
readonly HAPROXY_EDITS=${PGSQLCHK_HAPROXY_EDITS:-}
# The single-host layout of haproxy.cfg's peers section: only the local
# peer, which hands the stick table to a reloaded process.
readonly PEER_PORT=${PGSQLCHK_PEER_PORT:-10000}
readonly SOURCE_BINARY=${PGSQLCHK_BINARY:-$REPOSITORY/.build/release/pgsqlchk}
# The checks run as this system user, as in production (xinetd/pgsqlchk).
readonly CHECK_USER=pgsqlchk
readonly BINARY=$STACK/bin/pgsqlchk
readonly UP_WAIT_SECONDS=20

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



# One service of a node, rendered from its sample: SAMPLE PORT is the
# sample's port, LOG the name of the per-check log.
render_xinetd_service() {
  local sample=$1 sample_port=$2 output=$3 node=$4 db_port=$5 port=$6 log=$7
  # The sample's user, server_args' -U and the environment stay as shipped
  # but for the drain file; a line per started and finished check lets the
  # tests count them.
  render "$REPOSITORY/xinetd/$sample" "$output" \
    "s|^(\s*port\s*=\s*)$sample_port$|\1$port|" \
    "s|^(\s*server\s*=\s*).*$|\1$BINARY|" \
    "s|^(\s*server_args\s*=.*)-h /var/run/postgresql -p 5432|\1-h $PGSQLCHK_SOCKET_DIR -p $db_port|" \
    "s|^(\s*env\s*=.*PGSQLCHK_MAINTENANCE_FILE=)/etc/pgsqlchk/maintenance|\1$STACK/maintenance-$node|" \
    "s|^(\s*only_from\s*=\s*).*$|\1127.0.0.1|" \
    "s|^(\s*log_type\s*=\s*).*$|\1FILE $STACK/$log.log|" \
    "s|^(\s*log_on_success\s*=).*$|\1 PID EXIT DURATION|"
}

# Both services in one file, as one xinetd serves /etc/xinetd.d on a node.
render_xinetd() {
  local node=$1 db_port=$2 check_port=$3 agent_port=$4
  render_xinetd_service pgsqlchk 23267 "$STACK/xinetd-$node.conf" "$node" "$db_port" "$check_port" "xinetd-$node"
  render_xinetd_service pgsqlchk-agent 23269 "$STACK/xinetd-agent-$node.conf" "$node" "$db_port" "$agent_port" "xinetd-agent-$node"
  cat "$STACK/xinetd-agent-$node.conf" >>"$STACK/xinetd-$node.conf"
  rm "$STACK/xinetd-agent-$node.conf"
}

start_xinetd() {
  local node=$1 check_port=$2 agent_port=$3 deadline
  port_is_listening "$check_port" && die "port $check_port is in use (set PGSQLCHK_${node^^}_CHECK_PORT)"
  port_is_listening "$agent_port" && die "port $agent_port is in use (set PGSQLCHK_${node^^}_AGENT_PORT)"
  # setsid keeps it out of the caller's process group, so that a test
  # runner's signals do not reach it; setsid may fork, so the daemon's own
  # pidfile, not $!, tells its pid.
  setsid xinetd -dontfork -f "$STACK/xinetd-$node.conf" -pidfile "$STACK/xinetd-$node.pid" \
    -filelog "$STACK/xinetd-$node.log" </dev/null >>"$STACK/xinetd-$node.out" 2>&1 &
  deadline=$((SECONDS + 5))
  until port_is_listening "$check_port" && port_is_listening "$agent_port" &&
    live_pid "$STACK/xinetd-$node.pid" xinetd >/dev/null; do
    ((SECONDS < deadline)) || die "xinetd for $node is not listening on $check_port" "$STACK/xinetd-$node.log"
    sleep 0.05
  done
}

# The environment systemd/pgsqlchk@.service gives a check, one -E argument a
# variable: /etc/default/pgsqlchk (EnvironmentFile=) rendered from the
# shipped sample as an admin would edit it (PGHOST and PGPORT uncommented,
# the drain file added), then the unit's own Environment=PGPASSFILE with its
# credential, and what User= sets.
render_unit_defaults() {
  local node=$1 db_port=$2
  render "$REPOSITORY/systemd/pgsqlchk.default" "$STACK/default-$node" \
    "s|^#(PGHOST=).*$|\1$PGSQLCHK_SOCKET_DIR|" \
    "s|^#(PGPORT=).*$|\1$db_port|"
  echo "PGSQLCHK_MAINTENANCE_FILE=$STACK/maintenance-$node" >>"$STACK/default-$node"
}

unit_environment() {
  environment_options "$STACK/default-$1"
  # SetCredential=pgpass:# no /etc/pgsqlchk/pgpass, readable by the user only.
  printf '%s\n' -E "PGPASSFILE=$STACK/credentials/pgpass"
  printf '%s\n' -E "HOME=/nonexistent" -E "USER=$CHECK_USER" -E "LOGNAME=$CHECK_USER"
}

write_credential() {
  install -d -m 700 -o "$CHECK_USER" -g "$CHECK_USER" "$STACK/credentials"
  echo '# no /etc/pgsqlchk/pgpass' >"$STACK/credentials/pgpass"
  chown "$CHECK_USER:$CHECK_USER" "$STACK/credentials/pgpass"
  chmod 600 "$STACK/credentials/pgpass"
}

# One socket-activated service (start_activator): systemd-socket-activate
# binds the port as root (systemd does that for pgsqlchk.socket) and spawns
# each check; setpriv drops to the check user (User=, NoNewPrivileges=yes)
# and execs the binary, which keeps the spawned pid.
start_check_service() {
  local node=$1 name=$2 port=$3 environment
  shift 3
  port_is_listening "$port" && die "port $port is in use (see PGSQLCHK_*_CHECK_PORT and _AGENT_PORT)"
  mapfile -t environment < <(unit_environment "$node")
  start_activator "$port" "$STACK/activator-$name.log" "${environment[@]}" \
    setpriv --reuid="$CHECK_USER" --regid="$CHECK_USER" --clear-groups --no-new-privs -- "$BINARY" "$@" \
    >"$STACK/activator-$name.pid"
}

# The check port and the agent port of one node, as the supervisor serves them.
start_supervisor() {
  local node=$1 db_port=$2 check_port=$3 agent_port=$4
  case $SUPERVISOR in
    xinetd)
      render_xinetd "$node" "$db_port" "$check_port" "$agent_port"
      start_xinetd "$node" "$check_port" "$agent_port"
      ;;
    systemd)
      # systemd/pgsqlchk@.service runs the binary without arguments; the
      # agent, as a pgsqlchk-agent@.service would, with --agent.
      render_unit_defaults "$node" "$db_port"
      start_check_service "$node" "$node" "$check_port"
      start_check_service "$node" "agent-$node" "$agent_port" --agent
      ;;
  esac
}

render_haproxy() {
  local intervals=() edits=() server
  [[ -z $HAPROXY_INTER ]] || intervals=("s/ inter 1s fastinter 500ms downinter 500ms / inter $HAPROXY_INTER fastinter $HAPROXY_INTER downinter $HAPROXY_INTER /")
  [[ -z $HAPROXY_EDITS ]] || mapfile -t edits <<<"$HAPROXY_EDITS"
  render "$REPOSITORY/haproxy/haproxy.cfg" "$STACK/haproxy.cfg" \
    "s|^(\s*log) /dev/log |\1 stdout format raw |" \
    "s|^(\s*stats socket) /run/haproxy/admin.sock |\1 $STACK/haproxy.sock |" \
    "s|^(\s*bind) :5000$|\1 127.0.0.1:$RW_PORT|" \
    "s|^(\s*bind) :5001$|\1 127.0.0.1:$RO_PORT|" \
    "s|^(\s*bind) :7000$|\1 127.0.0.1:$STATS_PORT|" \
    "s| maxconn 80$| maxconn $HAPROXY_MAXCONN|" \
    "/192\.0\.2\.21:5432/s# port 23267( |$)# port $PRIMARY_CHECK_PORT\1#" \
    "/192\.0\.2\.22:5432/s# port 23267( |$)# port $STANDBY_CHECK_PORT\1#" \
    "/192\.0\.2\.21:5432/s| agent-port 23269 | agent-port $PRIMARY_AGENT_PORT |" \
    "/192\.0\.2\.22:5432/s| agent-port 23269 | agent-port $STANDBY_AGENT_PORT |" \
    "s|192\.0\.2\.21:5432|127.0.0.1:$PGSQLCHK_PRIMARY_PORT|" \
    "s|192\.0\.2\.22:5432|127.0.0.1:$PGSQLCHK_STANDBY_PORT|" \
    "s|^(\s*peer haproxy1) 192\.0\.2\.10:10000$|\1 127.0.0.1:$PEER_PORT|" \
    "s|^(\s*)peer haproxy2 .*$|\1# (single host: no second peer)|" \
    "${intervals[@]}" "${edits[@]}"
  # The sample as shipped must pass too, on a machine that knows none of its hosts.
  haproxy -q -c -f "$REPOSITORY/haproxy/haproxy.cfg" >"$STACK/haproxy-check.log" 2>&1 ||
    die "the shipped haproxy/haproxy.cfg is invalid" "$STACK/haproxy-check.log"
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
    stop_process "$pid"
  fi
  rm -f "$STACK/haproxy.pid"
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
    printf 'export PGSQLCHK_PRIMARY_AGENT_PORT=%q\n' "$PRIMARY_AGENT_PORT"
    printf 'export PGSQLCHK_STANDBY_AGENT_PORT=%q\n' "$STANDBY_AGENT_PORT"
    printf 'export PGSQLCHK_SUPERVISOR=%q\n' "$SUPERVISOR"
    printf 'export PGSQLCHK_HAPROXY_SOCKET=%q\n' "$STACK/haproxy.sock"
    printf 'export PGSQLCHK_STACK_BINARY=%q\n' "$BINARY"
    printf 'export PGSQLCHK_HAPROXY_LOG=%q\n' "$STACK/haproxy.log"
  } >"$RUN/stack.env"
}

cmd_start() {
  bash "$SCRIPT_DIR/deps.sh" e2e
  [[ $SUPERVISOR == xinetd ]] || command -v systemd-socket-activate >/dev/null ||
    die "no systemd-socket-activate: apt-get install systemd"
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
  [[ $SUPERVISOR == systemd ]] && write_credential

  start_supervisor primary "$PGSQLCHK_PRIMARY_PORT" "$PRIMARY_CHECK_PORT" "$PRIMARY_AGENT_PORT"
  start_supervisor standby "$PGSQLCHK_STANDBY_PORT" "$STANDBY_CHECK_PORT" "$STANDBY_AGENT_PORT"
  render_haproxy
  start_haproxy
  write_stack_env
  trap - EXIT

  echo "stack up: ReadWrite 127.0.0.1:$RW_PORT, ReadOnly 127.0.0.1:$RO_PORT, stats http://127.0.0.1:$STATS_PORT/stats"
  echo "checks: $SUPERVISOR on :$PRIMARY_CHECK_PORT (primary) and :$STANDBY_CHECK_PORT (standby), agents on :$PRIMARY_AGENT_PORT and :$STANDBY_AGENT_PORT, running $BINARY as $CHECK_USER; settings: source $RUN/stack.env"
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
  local pidfile pid exe
  [[ -d $STACK ]] || { rm -f "$RUN/stack.env"; return 0; }
  stop_haproxy
  # Whichever supervisor the stack was started with.
  for pidfile in "$STACK"/xinetd-*.pid "$STACK"/activator-*.pid; do
    if pid=$(live_pid "$pidfile" xinetd) || pid=$(live_pid "$pidfile" systemd-socket-activate); then
      stop_process "$pid"
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
  local pidfile pid state=0 found=0
  for pidfile in "$STACK"/xinetd-*.pid "$STACK"/activator-*.pid; do
    [[ -f $pidfile ]] || continue
    found=1
    if pid=$(live_pid "$pidfile" xinetd) || pid=$(live_pid "$pidfile" systemd-socket-activate); then
      echo "$(basename "$pidfile" .pid): running, pid $pid"
    else
      echo "$(basename "$pidfile" .pid): not running"
      state=3
    fi
  done
  ((found)) || { echo "check supervisors: not running"; state=3; }
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
  (($# == 1)) || usage 7 9
  ((EUID == 0)) || die "run as root (the checks run as the $CHECK_USER user)"
  [[ $RUN == /?* ]] || die "PGSQLCHK_RUN_DIR must be an absolute path other than /, not '$RUN'"
  [[ $SUPERVISOR == xinetd || $SUPERVISOR == systemd ]] ||
    die "PGSQLCHK_SUPERVISOR must be xinetd or systemd, not '$SUPERVISOR'"
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart-haproxy) cmd_restart_haproxy ;;
    servers) server_states ;;
    *) usage 7 9 ;;
  esac
}

main "$@"
