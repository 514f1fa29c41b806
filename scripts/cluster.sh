#!/usr/bin/env bash
# Throwaway PostgreSQL primary + streaming hot standby on 127.0.0.1 for tests.
# Run as root; the servers themselves run as the postgres OS user.
#
#   cluster.sh start | stop | status
#   cluster.sh start-three                    start, plus a second standby, standby2
#   cluster.sh start-other                    an unrelated primary, other (own initdb,
#                                             socket only), beside the cluster
#   cluster.sh psql NODE [psql args...]       NODE: primary | standby | standby2 | other
#   cluster.sh pg_ctl NODE ARGS...            e.g. pg_ctl standby promote -w
#   cluster.sh rebuild-standby NODE FROM      re-clone NODE as a standby of FROM
#   cluster.sh server-log-errors              print pgsqlchk's ERROR lines; 1 if any
#
# Environment: PGSQLCHK_RUN_DIR, PGSQLCHK_PRIMARY_PORT, PGSQLCHK_STANDBY_PORT,
# PGSQLCHK_STANDBY2_PORT, PGSQLCHK_OTHER_PORT (defaults: scripts/common.sh);
# PGSQLCHK_PG_BIN, PGSQLCHK_PG_MAJOR (find_pg_bin); PGSQLCHK_SERVER_LOGS
# (keep_server_logs). `start` writes $RUN/env to source.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$SCRIPT_DIR/common.sh"
readonly SCRIPT_DIR
readonly RUN PRIMARY_PORT STANDBY_PORT STANDBY2_PORT OTHER_PORT
readonly SOCK=$RUN/sock
readonly SETUP_LOG=$RUN/setup.log
readonly STREAM_WAIT_SECONDS=30
readonly REPOSITORY=${SCRIPT_DIR%/scripts}
# Of the 17 slots not reserved for superusers (max_connections 20, 3
# reserved), app may take 12, leaving 5 that its flood never reaches. The
# shipped role file gives pgsqlchk CONNECTION LIMIT 14 (sized for
# max_connections 100), so here the two limits overlap on purpose: the slots
# run out after a few connections, which the flood tests need; the agent's
# maxconn, which keeps 14 back for the checks, therefore advertises 3.
readonly APP_CONNECTION_LIMIT=12

node_port() {
  case "$1" in
    primary) echo "$PRIMARY_PORT" ;;
    standby) echo "$STANDBY_PORT" ;;
    standby2) echo "$STANDBY2_PORT" ;;
    other) echo "$OTHER_PORT" ;;
    *) die "unknown node '$1' (expected primary, standby, standby2 or other)" ;;
  esac
}

# psql as the caller, trusted over the socket; the connect timeout keeps us
# from hanging on a postmaster that a test has SIGSTOPped.
query() {
  PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -At -h "$SOCK" -p "$(node_port "$1")" \
    -U postgres -d postgres -c "$2"
}

psql_file() {
  local node=$1 file=$2
  shift 2
  PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$(node_port "$node")" \
    -U postgres -d postgres -f "$file" "$@" >>"$SETUP_LOG" 2>&1
}

postmaster_pid() {
  [[ -f $RUN/$1/postmaster.pid ]] && head -n 1 "$RUN/$1/postmaster.pid"
}

node_is_running() {
  local pid
  pid=$(postmaster_pid "$1") && is_running "$pid"
}

prepare_run_dir() {
  # postgres must create data dirs and logs here; the socket dir is sticky and
  # world-writable so both root and unprivileged test users can connect.
  install -d -o postgres -g postgres -m 755 "$RUN"
  install -d -m 1777 "$SOCK"
  as_postgres test -w "$RUN" ||
    die "$RUN is not reachable by the postgres user (a parent directory is private?)"
}

write_primary_config() {
  cat >>"$RUN/primary/postgresql.conf" <<EOF

# pgsqlchk test cluster: durability is traded for speed, it is thrown away.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 20
superuser_reserved_connections = 3
wal_level = replica
max_wal_senders = 5
wal_keep_size = 64MB
hot_standby = on
hot_standby_feedback = on
wal_retrieve_retry_interval = 1s
wal_receiver_status_interval = 1s
logging_collector = off
log_connections = off
lc_messages = 'C'
# A session's lines name its application, so a check's own errors can be
# told from the tests' (server-log-errors).
log_line_prefix = '%m [%p] %q[%a] '
EOF
  # First match wins: the dedicated roles must come before the catch-all
  # trust. pgsqlchk logs in as the shipped sample says (sql/pg_hba.conf: peer
  # over the socket, mapped by sql/pg_ident.conf), with the test runner's own
  # OS user mapped as well, so the tests can run the check by hand.
  {
    grep -v '^#' "$REPOSITORY/sql/pg_hba.conf"
    cat <<'EOF'
local all         pgsqlchk_pw                  scram-sha-256
host  all         pgsqlchk_pw     127.0.0.1/32 scram-sha-256
local all         pgsqlchk_denied              reject
host  all         pgsqlchk_denied 127.0.0.1/32 reject
local all         all                          trust
host  all         all             127.0.0.1/32 trust
local replication all                          trust
host  replication all             127.0.0.1/32 trust
EOF
  } >"$RUN/primary/pg_hba.conf"
  {
    grep -v '^#' "$REPOSITORY/sql/pg_ident.conf"
    printf 'pgsqlchk    %s  pgsqlchk\n' "$(id -un)"
    # Tests/system/package-test.sh runs the installed binary as nobody.
    printf 'pgsqlchk    nobody  pgsqlchk\n'
  } >"$RUN/primary/pg_ident.conf"
}

# Per-node settings go in postgresql.auto.conf, which is read last, so they
# override whatever a base backup copied from the other node; a plain
# `pg_ctl start` then comes up on the right port.
write_node_identity() {
  printf "port = %s\ncluster_name = '%s'\n" "$(node_port "$1")" "$1" \
    >>"$RUN/$1/postgresql.auto.conf"
}

start_node() {
  as_postgres "$PG_BIN/pg_ctl" -D "$RUN/$1" -l "$RUN/$1.log" -w start \
    >>"$SETUP_LOG" 2>&1 || die "$1 did not start" "$RUN/$1.log"
  # What answers is what the run asked for, not a server found elsewhere.
  local number
  number=$(query "$1" "SHOW server_version_num") || die "$1 does not answer" "$RUN/$1.log"
  ((number / 10000 == PG_MAJOR)) || die "$1 runs server_version_num $number, not PostgreSQL $PG_MAJOR"
}

# pgsqlchk and app's connection limit come from the shipped SQL (sql/): app,
# the clients of the end-to-end tests, may take APP_CONNECTION_LIMIT slots;
# filler has no limit, for the test that wants every slot taken.
create_roles() {
  psql_file primary "$REPOSITORY/sql/pgsqlchk-role.sql" ||
    die "creating the pgsqlchk role failed" "$SETUP_LOG"
  query primary "
    CREATE ROLE pgsqlchk_denied LOGIN;
    CREATE ROLE app LOGIN;
    CREATE ROLE filler LOGIN;
    DO \$\$ BEGIN
      EXECUTE format('CREATE ROLE pgsqlchk_pw LOGIN PASSWORD %L',
                     'not-used-by-tests-' || md5(random()::text));
    END \$\$;" >>"$SETUP_LOG" 2>&1 || die "creating roles failed" "$SETUP_LOG"
  psql_file primary "$REPOSITORY/sql/app-connection-limit.sql" -v role=app -v limit="$APP_CONNECTION_LIMIT" ||
    die "limiting app's connections failed" "$SETUP_LOG"
}

# wait_for_streaming NODE FROM: NODE streams from FROM and knows where FROM's
# WAL ends. A receiver learns that from the first WAL or keepalive it takes
# in, which an idle primary may not send for a long time; until then lag=
# answers unknown (as it must). So FROM writes one record, as any primary
# with clients would.
wait_for_streaming() {
  local node=$1 from=$2 deadline=$((SECONDS + STREAM_WAIT_SECONDS)) nudged=
  until [[ $(query "$node" "SELECT pg_is_in_recovery() AND EXISTS (
            SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming' AND latest_end_lsn IS NOT NULL)" 2>/dev/null) == t ]]; do
    ((SECONDS < deadline)) || die "$node is not streaming with its primary's position after ${STREAM_WAIT_SECONDS}s" "$RUN/$node.log"
    if [[ -z $nudged ]] && [[ $(query "$node" "SELECT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')" 2>/dev/null) == t ]]; then
      query "$from" "SELECT pg_logical_emit_message(false, 'pgsqlchk-test', 'streaming')" >/dev/null && nudged=1
    fi
    sleep 0.2
  done
}

clone_standby() {
  local node=$1 from=$2
  as_postgres "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$(node_port "$from")" -U postgres \
    -D "$RUN/$node" -R -X stream -c fast --no-sync >>"$SETUP_LOG" 2>&1 ||
    die "base backup of $node from $from failed" "$SETUP_LOG"
  write_node_identity "$node"
  start_node "$node"
  wait_for_streaming "$node" "$from"
}

write_env_file() {
  {
    printf 'export PGSQLCHK_RUN_DIR=%q\n' "$RUN"
    printf 'export PGSQLCHK_SOCKET_DIR=%q\n' "$SOCK"
    printf 'export PGSQLCHK_PRIMARY_PORT=%q\n' "$PRIMARY_PORT"
    printf 'export PGSQLCHK_STANDBY_PORT=%q\n' "$STANDBY_PORT"
    printf 'export PGSQLCHK_PG_BIN=%q\n' "$PG_BIN"
    printf 'export PGSQLCHK_PG_MAJOR=%q\n' "$PG_MAJOR"
  } >"$RUN/env"
}

cmd_start() {
  bash "$SCRIPT_DIR/deps.sh" cluster
  find_pg_bin
  if node_is_running primary && node_is_running standby; then
    echo "cluster already running in $RUN (primary :$PRIMARY_PORT, standby :$STANDBY_PORT)"
    return 0
  fi
  # Half-started or crashed leftovers are not worth repairing: start clean.
  if [[ -e $RUN ]]; then
    echo "cluster.sh: clearing leftovers of an earlier run in $RUN"
    cmd_stop
  fi

  prepare_run_dir
  as_postgres "$PG_BIN/initdb" -D "$RUN/primary" -U postgres --no-sync -E UTF8 --locale=C \
    >>"$SETUP_LOG" 2>&1 || die "initdb failed" "$SETUP_LOG"
  write_primary_config
  write_node_identity primary
  start_node primary
  create_roles
  clone_standby standby primary
  write_env_file

  echo "cluster up in $RUN: primary 127.0.0.1:$PRIMARY_PORT, standby 127.0.0.1:$STANDBY_PORT (streaming)"
  echo "PostgreSQL $(postgres_version "$PG_BIN"), socket dir $SOCK; settings: source $RUN/env"
}

# The third node, for the stale-primary guard's tests: a second standby of
# the primary. The two-node suites never see it.
cmd_start_three() {
  cmd_start
  if node_is_running standby2; then
    echo "standby2 already running on 127.0.0.1:$STANDBY2_PORT"
    return 0
  fi
  node_is_running primary || die "primary is not running; cluster.sh stop, then start-three"
  rm -rf "${RUN:?}/standby2"
  clone_standby standby2 primary
  # Only a three-node cluster names the third port: the guard's suite runs
  # when it is set, and the two-node runs leave it out.
  printf 'export PGSQLCHK_STANDBY2_PORT=%q\n' "$STANDBY2_PORT" >>"$RUN/env"
  echo "standby2 127.0.0.1:$STANDBY2_PORT (streaming from primary)"
}

# A primary of another cluster on the same host, as Debian's
# pg_createcluster makes them: the stale-primary guard's tests share one
# state directory between it and the cluster. Its own initdb (so its own
# system identifier), the cluster's pg_hba.conf and roles file, and no TCP
# listener, so that it needs no port of its own beyond a socket file name.
cmd_start_other() {
  find_pg_bin
  node_is_running primary || die "primary is not running; cluster.sh start first"
  if node_is_running other; then
    echo "other already running on socket $SOCK port $OTHER_PORT"
    return 0
  fi
  rm -rf "${RUN:?}/other"
  as_postgres "$PG_BIN/initdb" -D "$RUN/other" -U postgres --no-sync -E UTF8 --locale=C \
    >>"$SETUP_LOG" 2>&1 || die "initdb of other failed" "$SETUP_LOG"
  cp "$RUN/primary/pg_hba.conf" "$RUN/primary/pg_ident.conf" "$RUN/other/"
  printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\ncluster_name = 'other'\nfsync = off\nshared_buffers = 16MB\nmax_connections = 20\nlc_messages = 'C'\n" \
    "$SOCK" "$OTHER_PORT" >>"$RUN/other/postgresql.auto.conf"
  start_node other
  psql_file other "$REPOSITORY/sql/pgsqlchk-role.sql" || die "creating the pgsqlchk role on other failed" "$SETUP_LOG"
  echo "other: an unrelated primary on socket $SOCK port $OTHER_PORT"
}

stop_node() {
  local node=$1 pid
  pid=$(postmaster_pid "$node") || return 0
  find_pg_bin
  # A test may have left it SIGSTOPped; a stopped process never sees shutdown.
  kill -CONT "$pid" 2>/dev/null || true
  pkill -CONT -P "$pid" 2>/dev/null || true
  as_postgres "$PG_BIN/pg_ctl" -D "$RUN/$node" -m immediate -w stop >/dev/null 2>&1 || true
}

# Tests start stall-proxy.py with `--pidfile $RUN/NAME.pid`; the command-line
# check keeps a recycled pid from killing an unrelated process.
stop_stall_proxies() {
  local pidfile pid
  for pidfile in "$RUN"/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(<"$pidfile")
    if grep -qs stall-proxy "/proc/$pid/cmdline"; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
}

cmd_stop() {
  [[ -e $RUN ]] || return 0
  stop_node other
  stop_node standby2
  stop_node standby
  stop_node primary
  stop_stall_proxies
  keep_server_logs
  rm -rf "$RUN"
}

# With PGSQLCHK_SERVER_LOGS naming a file, every node's log is appended to it
# before the run directory goes: suites that restart the cluster between
# tests leave all of their servers' logs for server-log-errors.
keep_server_logs() {
  [[ -n ${PGSQLCHK_SERVER_LOGS:-} ]] || return 0
  local log
  for log in "$RUN"/{primary,standby,standby2}.log; do
    [[ -f $log ]] || continue
    printf '=== %s\n' "$log" >>"$PGSQLCHK_SERVER_LOGS"
    cat "$log" >>"$PGSQLCHK_SERVER_LOGS"
  done
}

# The ERROR and WARNING lines that pgsqlchk's own sessions left in the node
# logs (and PGSQLCHK_SERVER_LOGS): its statements must never cause one. A
# FATAL is left out: the tests refuse logins on purpose.
cmd_server_log_errors() {
  local log logs=()
  for log in "$RUN"/{primary,standby,standby2}.log ${PGSQLCHK_SERVER_LOGS:+"$PGSQLCHK_SERVER_LOGS"}; do
    [[ -f $log ]] && logs+=("$log")
  done
  ((${#logs[@]})) || die "no server logs in $RUN${PGSQLCHK_SERVER_LOGS:+ or $PGSQLCHK_SERVER_LOGS}"
  ! grep -hE '\[pgsqlchk\] (ERROR|WARNING): ' "${logs[@]}"
}

cmd_status() {
  find_pg_bin
  local node state all_running=0
  local nodes=(primary standby)
  [[ -d $RUN/standby2 ]] && nodes+=(standby2)
  for node in "${nodes[@]}"; do
    if ! node_is_running "$node"; then
      echo "$node: not running"
      all_running=3
      continue
    fi
    state=$(query "$node" "SELECT CASE WHEN pg_is_in_recovery() THEN 'in recovery, wal receiver: '
        || coalesce((SELECT status FROM pg_stat_wal_receiver), 'none') ELSE 'not in recovery' END" \
      2>/dev/null) || state="not answering queries"
    echo "$node: running on 127.0.0.1:$(node_port "$node"), $state"
  done
  return "$all_running"
}

cmd_psql() {
  (($# >= 1)) || usage 5 12
  find_pg_bin
  local port
  port=$(node_port "$1")
  shift
  exec "$PG_BIN/psql" -X -h "$SOCK" -p "$port" -U postgres -d postgres "$@"
}

cmd_pg_ctl() {
  (($# >= 2)) || usage 5 12
  find_pg_bin
  local node=$1 log_args=()
  node_port "$node" >/dev/null
  shift
  # Without -l a started postmaster keeps the caller's stdout open, which
  # hangs any test reading our output; default to the node's usual log.
  if [[ " $* " =~ \ (start|restart)\  && ! " $* " =~ \ (-l|--log) ]]; then
    log_args=(-l "$RUN/$node.log")
  fi
  as_postgres "$PG_BIN/pg_ctl" -D "$RUN/$node" "${log_args[@]}" "$@"
}

cmd_rebuild_standby() {
  (($# == 2)) || usage 5 12
  local node=$1 from=$2
  node_port "$node" >/dev/null
  node_port "$from" >/dev/null
  [[ $node != "$from" ]] || die "a node cannot be rebuilt from itself"
  find_pg_bin
  node_is_running "$from" || die "$from is not running"
  stop_node "$node"
  rm -rf "${RUN:?}/$node"
  clone_standby "$node" "$from"
  echo "$node rebuilt as a standby of $from (127.0.0.1:$(node_port "$node"), streaming)"
}

main() {
  (($# >= 1)) || usage 5 12
  # Relative paths would break under as_postgres's cd, and stop removes $RUN.
  [[ $RUN == /?* ]] || die "PGSQLCHK_RUN_DIR must be an absolute path other than /, not '$RUN'"
  local command=$1
  shift
  case "$command" in
    start) cmd_start ;;
    start-three) cmd_start_three ;;
    start-other) cmd_start_other ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    psql) cmd_psql "$@" ;;
    pg_ctl) cmd_pg_ctl "$@" ;;
    rebuild-standby) cmd_rebuild_standby "$@" ;;
    server-log-errors) cmd_server_log_errors ;;
    *) usage 5 12 ;;
  esac
}

main "$@"
