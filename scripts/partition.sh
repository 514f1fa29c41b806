#!/usr/bin/env bash
# A database-side partition on one machine: three PostgreSQL hosts of one
# streaming cluster and one HAProxy host, each in its own network namespace
# on one bridge. Each database host runs one server (scram-sha-256 over TCP,
# peer over its socket) and pgsqlchk under xinetd (the shipped sample) with
# --peers naming all three; HAProxy runs haproxy/haproxy.cfg's ReadWrite
# listener with a third server line. Run as root.
#
#   partition.sh start [QUORUM]     QUORUM: all, majority, N, or empty (guard only)
#   partition.sh stop | status
#   partition.sh cut                db1 loses db2 and db3 (both ways); HAProxy still reaches all
#   partition.sh heal               undo cut
#   partition.sh promote NODE       pg_ctl promote on NODE (db1 db2 db3)
#   partition.sh check NODE [PATH]  the check's answer, asked from the HAProxy host
#   partition.sh psql NODE SQL      as postgres, over NODE's socket
#   partition.sh writes SECONDS     one client writing through HAProxy's ReadWrite
#                                   port: one connection and one row a write
#   partition.sh haproxy COMMAND    a runtime API command, e.g. "show stat"
#   partition.sh exec HOST COMMAND...  HOST: db1 db2 db3 hap
#
# The network (addresses nowhere else, nothing in the root namespace):
#   bridge br0 in namespace pgq-lan; 10.214.0.0/24
#   pgq-hap .11   pgq-db1 .21 (the first primary)   pgq-db2 .22   pgq-db3 .23
# The cut routes, on the database hosts only, db1's packets to .22 and .23
# and theirs to .21 through .99, which does not exist: connections time out
# as they do across a broken switch, and HAProxy's packets are untouched.
#
# Ports: PostgreSQL PGSQLCHK_PRIMARY_PORT, PGSQLCHK_STANDBY_PORT,
# PGSQLCHK_STANDBY2_PORT (db1 db2 db3: distinct, so the fence files of a
# shared state directory could not collide either); the check
# PGSQLCHK_PRIMARY_CHECK_PORT on every host; HAProxy's ReadWrite port
# PGSQLCHK_RW_PORT. Each host keeps its own state directory, as real hosts do.
# `start` writes $RUN/partition.env; `stop` removes every namespace and
# process it made, as does a `start` that fails half-way.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$SCRIPT_DIR/common.sh"
readonly SCRIPT_DIR
readonly REPOSITORY=${SCRIPT_DIR%/scripts}
readonly PART=$RUN/partition
readonly SOURCE_BINARY=${PGSQLCHK_BINARY:-$REPOSITORY/.build/release/pgsqlchk}
readonly BINARY=$PART/bin/pgsqlchk
readonly CHECK_USER=pgsqlchk

readonly NS_PREFIX=pgq-
readonly NET4=10.214.0
readonly BLACK_HOLE=$NET4.99
declare -rA HOST_NUMBER=([hap]=11 [db1]=21 [db2]=22 [db3]=23)
declare -rA DB_PORT=([db1]=$PRIMARY_PORT [db2]=$STANDBY_PORT [db3]=$STANDBY2_PORT)
readonly NODES=(db1 db2 db3)
readonly CHECK_PORT=$PRIMARY_CHECK_PORT
# HAProxy's stick-table peer listener (the sample names two HAProxies; the
# second one, .12, does not exist here).
readonly PEER_PORT=$((STATS_PORT + 1))
readonly UP_WAIT_SECONDS=30

address() { echo "$NET4.${HOST_NUMBER[$1]}"; }

make_network() {
  local host
  ip netns add "$(ns lan)"
  ip -n "$(ns lan)" link add br0 type bridge
  ip -n "$(ns lan)" link set br0 up
  for host in hap "${NODES[@]}"; do
    ip netns add "$(ns "$host")"
    ip -n "$(ns "$host")" link set lo up
    ip -n "$(ns lan)" link add "$host" type veth peer name eth0 netns "$(ns "$host")"
    ip -n "$(ns lan)" link set "$host" master br0 up
    ip -n "$(ns "$host")" addr add "$(address "$host")/24" dev eth0
    ip -n "$(ns "$host")" link set eth0 up
  done
}

psql_on() {
  local node=$1
  shift
  PGCONNECT_TIMEOUT=3 as_postgres "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -h "$PART/$node/sock" \
    -p "${DB_PORT[$node]}" -d postgres "$@"
}

start_postgres() {
  local node=$1
  on "$node" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PART/$node/data" -l "$PART/$node/postgres.log" -w start \
    >>"$PART/setup.log" 2>&1 || die "$node did not start" "$PART/$node/postgres.log"
}

# Settings of this host, read last so that a base backup's copy of db1's
# never applies.
write_node_settings() {
  local node=$1
  cat >>"$PART/$node/data/postgresql.auto.conf" <<EOF
port = ${DB_PORT[$node]}
listen_addresses = '$(address "$node")'
unix_socket_directories = '$PART/$node/sock'
cluster_name = '$node'
EOF
}

# One password a role, random, in one password file an OS user: postgres
# (replication), pgsqlchk (the guard's TCP logins to the peers, as the
# README's step 2 says), root (the write client).
write_password_files() {
  local role password node
  declare -gA PASSWORD
  for role in replicator pgsqlchk app; do
    PASSWORD[$role]=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  done
  : >"$PART/pgpass-postgres"
  : >"$PART/pgpass-pgsqlchk"
  : >"$PART/pgpass-root"
  for node in "${NODES[@]}"; do
    echo "$(address "$node"):${DB_PORT[$node]}:*:replicator:${PASSWORD[replicator]}" >>"$PART/pgpass-postgres"
    echo "$(address "$node"):${DB_PORT[$node]}:postgres:pgsqlchk:${PASSWORD[pgsqlchk]}" >>"$PART/pgpass-pgsqlchk"
  done
  echo "$(address hap):$RW_PORT:postgres:app:${PASSWORD[app]}" >>"$PART/pgpass-root"
  chown postgres: "$PART/pgpass-postgres"
  chown "$CHECK_USER:" "$PART/pgpass-pgsqlchk"
  chmod 600 "$PART"/pgpass-*
}

start_cluster() {
  local node
  for node in "${NODES[@]}"; do
    install -d -o postgres -g postgres -m 755 "$PART/$node"
    install -d -o postgres -g postgres -m 1777 "$PART/$node/sock"
    install -d -o "$CHECK_USER" -g "$CHECK_USER" -m 700 "$PART/$node/state"
  done
  as_postgres "$PG_BIN/initdb" -D "$PART/db1/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    >>"$PART/setup.log" 2>&1 || die "initdb failed" "$PART/setup.log"
  cat >>"$PART/db1/data/postgresql.conf" <<'EOF'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 40
wal_keep_size = 64MB
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
lc_messages = 'C'
EOF
  # The check logs in over its host's socket as the shipped sample says
  # (peer, mapped); everything over TCP is a password.
  {
    grep -v '^#' "$REPOSITORY/sql/pg_hba.conf"
    cat <<EOF
local all         all                          peer
host  replication replicator $NET4.0/24 scram-sha-256
host  postgres    pgsqlchk   $NET4.0/24 scram-sha-256
host  postgres    app        $NET4.0/24 scram-sha-256
EOF
  } >"$PART/db1/data/pg_hba.conf"
  grep -v '^#' "$REPOSITORY/sql/pg_ident.conf" >"$PART/db1/data/pg_ident.conf"
  write_node_settings db1
  start_postgres db1
  psql_on db1 -q -f "$REPOSITORY/sql/pgsqlchk-role.sql" >>"$PART/setup.log" 2>&1 ||
    die "creating the pgsqlchk role failed" "$PART/setup.log"
  psql_on db1 -q >>"$PART/setup.log" 2>&1 <<EOF || die "creating roles failed" "$PART/setup.log"
ALTER ROLE pgsqlchk PASSWORD '${PASSWORD[pgsqlchk]}';
CREATE ROLE replicator REPLICATION LOGIN PASSWORD '${PASSWORD[replicator]}';
CREATE ROLE app LOGIN PASSWORD '${PASSWORD[app]}';
CREATE TABLE writes (target inet NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON writes TO app;
EOF
  for node in db2 db3; do
    on "$node" runuser -u postgres -- env PGPASSFILE="$PART/pgpass-postgres" \
      "$PG_BIN/pg_basebackup" -h "$(address db1)" -p "${DB_PORT[db1]}" -U replicator -D "$PART/$node/data" -R -X stream \
      >>"$PART/setup.log" 2>&1 || die "pg_basebackup for $node failed" "$PART/setup.log"
    write_node_settings "$node"
    start_postgres "$node"
  done
  for node in db2 db3; do
    wait_until "$UP_WAIT_SECONDS" "$node does not stream from db1" "$PART/$node/postgres.log" \
      eval "[[ \$(psql_on $node -c \"SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'\") == 1 ]]"
  done
}

# xinetd/pgsqlchk as an admin with three nodes would change it: the peers,
# the quorum, the password file and this host's state directory in `env`.
start_xinetd() {
  local node=$1 quorum=$2 peers="" other
  for other in "${NODES[@]}"; do peers+="${peers:+,}$(address "$other"):${DB_PORT[$other]}"; done
  render "$REPOSITORY/xinetd/pgsqlchk" "$PART/$node/xinetd.conf" \
    "s|^(\s*port\s*=\s*)23267$|\1$CHECK_PORT|" \
    "s|^(\s*server\s*=\s*).*$|\1$BINARY|" \
    "s|^(\s*server_args\s*=.*)-h /var/run/postgresql -p 5432|\1-h $PART/$node/sock -p ${DB_PORT[$node]}|" \
    "s|^(\s*env\s*=.*PGSQLCHK_MAINTENANCE_FILE=)/etc/pgsqlchk/maintenance$|\1$PART/$node/maintenance PGPASSFILE=$PART/pgpass-pgsqlchk PGSQLCHK_PEERS=$peers PGSQLCHK_STATE_DIR=$PART/$node/state${quorum:+ PGSQLCHK_QUORUM=$quorum}|" \
    "s|^(\s*only_from\s*=\s*).*$|\1$(address hap)|" \
    "s|^(\s*log_type\s*=\s*).*$|\1FILE $PART/$node/xinetd-checks.log|"
  on "$node" setsid xinetd -dontfork -f "$PART/$node/xinetd.conf" -pidfile "$PART/$node/xinetd.pid" \
    </dev/null >>"$PART/$node/xinetd.log" 2>&1 &
  wait_until 5 "xinetd on $node is not listening" "$PART/$node/xinetd.log" \
    eval "[[ -n \$(on $node ss -Htln 'sport = :$CHECK_PORT') ]]"
}

# The ReadWrite listener as shipped, with a third server, the test's
# addresses and ports, and no agent (the test is about the HTTP check's answer).
render_haproxy() {
  render "$REPOSITORY/haproxy/haproxy.cfg" "$PART/haproxy.cfg" \
    "s|^(\s*log) /dev/log |\1 stdout format raw |" \
    "s|^(\s*stats socket) /run/haproxy/admin.sock |\1 $PART/haproxy.sock |" \
    "s|^(\s*peer haproxy1) 192\.0\.2\.10:10000|\1 $(address hap):$PEER_PORT|" \
    "s|^(\s*peer haproxy2) 192\.0\.2\.11:10000|\1 $NET4.12:$PEER_PORT|" \
    "s|^(\s*bind) :7000$|\1 :$STATS_PORT|" \
    "s|^(\s*bind) :5000$|\1 :$RW_PORT|" \
    "s|^(\s*bind) :5001$|\1 :$RO_PORT|" \
    "s| agent-check .*$||" \
    "s|^(\s*server) pg2 192\.0\.2\.22:5432 check port 23267$|&\n\1 pg3 192.0.2.23:5432 check port 23267|" \
    "s|192\.0\.2\.21:5432 check port 23267|$(address db1):${DB_PORT[db1]} check port $CHECK_PORT|" \
    "s|192\.0\.2\.22:5432 check port 23267|$(address db2):${DB_PORT[db2]} check port $CHECK_PORT|" \
    "s|192\.0\.2\.23:5432 check port 23267|$(address db3):${DB_PORT[db3]} check port $CHECK_PORT|"
  haproxy -q -c -f "$PART/haproxy.cfg" >"$PART/haproxy-check.log" 2>&1 ||
    die "the rendered haproxy.cfg is invalid" "$PART/haproxy-check.log"
}

haproxy_command() { echo "$1" | socat -t 5 - "UNIX-CONNECT:$PART/haproxy.sock"; }

# pg_readwrite/pgN and its state (UP, DOWN, ...), one a line.
readwrite_states() {
  haproxy_command "show stat" 2>/dev/null | awk -F, '$1 == "pg_readwrite" && $2 ~ /^pg[0-9]$/ { print $2, $18 }'
}

start_haproxy() {
  on hap setsid haproxy -W -db -f "$PART/haproxy.cfg" -p "$PART/haproxy.pid" \
    </dev/null >>"$PART/haproxy.log" 2>&1 &
  wait_until 5 "haproxy did not start" "$PART/haproxy.log" eval "[[ -S $PART/haproxy.sock ]]"
  wait_until "$UP_WAIT_SECONDS" "HAProxy does not see pg1 UP for writes" "$PART/haproxy.log" \
    eval "readwrite_states | grep -qx 'pg1 UP'"
}

cmd_start() {
  local quorum=${1:-} node
  bash "$SCRIPT_DIR/deps.sh" cluster e2e partition
  [[ -x $SOURCE_BINARY ]] || die "no binary at $SOURCE_BINARY: run make build, or set PGSQLCHK_BINARY"
  cmd_stop
  trap cmd_stop EXIT
  ensure_system_user "$CHECK_USER"
  install -d -m 755 "$RUN" "$PART" "$PART/bin"
  install -m 755 "$SOURCE_BINARY" "$BINARY"
  make_network
  write_password_files
  start_cluster
  for node in "${NODES[@]}"; do start_xinetd "$node" "$quorum"; done
  render_haproxy
  start_haproxy
  {
    printf 'export PGSQLCHK_RUN_DIR=%q\n' "$RUN"
    printf 'export PGSQLCHK_PARTITION_DIR=%q\n' "$PART"
    printf 'export PGSQLCHK_PARTITION_QUORUM=%q\n' "$quorum"
  } >"$RUN/partition.env"
  trap - EXIT
  echo "partition test bed up in $PART: db1 $(address db1):${DB_PORT[db1]} primary, db2 and db3 standbys; quorum ${quorum:-off}; HAProxy ReadWrite $(address hap):$RW_PORT"
}

# On each database host, a route to each address it must no longer reach,
# through a neighbour that does not exist: packets go nowhere, and
# connections time out as across a broken switch. (The kernels this runs on
# may lack tc's drop actions; a route needs no module.)
drop_to() {
  local host=$1 target
  shift
  for target in "$@"; do
    ip -n "$(ns "$host")" route replace "$target/32" via "$BLACK_HOLE" dev eth0
  done
}

cmd_cut() {
  drop_to db1 "$(address db2)" "$(address db3)"
  drop_to db2 "$(address db1)"
  drop_to db3 "$(address db1)"
}

cmd_heal() {
  local node other
  for node in "${NODES[@]}"; do
    for other in "${NODES[@]}"; do
      ip -n "$(ns "$node")" route del "$(address "$other")/32" 2>/dev/null || true
    done
  done
}

# SECONDS of writes through HAProxy, each its own connection, as a client
# that reconnects would: prints "ok N failed M".
cmd_writes() {
  local seconds=$1 ok=0 failed=0 deadline
  deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if on hap env PGPASSFILE="$PART/pgpass-root" PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q \
      -h "$(address hap)" -p "$RW_PORT" -U app -d postgres \
      -c "INSERT INTO writes (target) VALUES (inet_server_addr())" >/dev/null 2>>"$PART/writes.log"; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
      sleep 0.1
    fi
  done
  echo "ok $ok failed $failed"
}

stop_pidfile() {
  local pid
  if pid=$(live_pid "$1" "$2"); then
    stop_process "$pid"
  fi
}

cmd_stop() {
  local node name pid tries=20
  stop_pidfile "$PART/haproxy.pid" haproxy
  for node in "${NODES[@]}"; do
    stop_pidfile "$PART/$node/xinetd.pid" xinetd
    if [[ -f $PART/$node/data/postmaster.pid ]]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$PART/$node/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  # Every process still in one of our namespaces was started by us.
  while ((tries-- > 0)) && [[ -n $(for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] && ip netns pids "$name"; done) ]]; do
    sleep 0.1
  done
  for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] || continue
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$name"
  done
  rm -rf "$PART" "$RUN/partition.env"
}

cmd_status() {
  local name
  for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] && echo "namespace $name: $(ip netns pids "$name" | wc -l) processes"
  done
  readwrite_states
}

require_node() { [[ ${1:-} == db[123] ]] || usage 8 19; }

main() {
  (($# >= 1)) || usage 8 19
  ((EUID == 0)) || die "run as root (namespaces, and the daemons' users)"
  [[ $RUN == /?* ]] || die "PGSQLCHK_RUN_DIR must be an absolute path other than /, not '$RUN'"
  local command=$1
  shift
  find_pg_bin
  case "$command" in
    start) cmd_start "${1:-}" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    cut) cmd_cut ;;
    heal) cmd_heal ;;
    promote) require_node "${1:-}"; as_postgres "$PG_BIN/pg_ctl" -D "$PART/$1/data" -w promote >/dev/null ;;
    check) require_node "${1:-}"; on hap curl -s -m 5 -o - -w '\n%{http_code}\n' "http://$(address "$1"):$CHECK_PORT${2:-/}" ;;
    psql) require_node "${1:-}"; psql_on "$1" -c "$2" ;;
    writes) cmd_writes "${1:?seconds}" ;;
    haproxy) haproxy_command "$1" ;;
    exec) [[ -n ${HOST_NUMBER[${1:-}]:-} ]] || usage 8 19; on "$@" ;;
    *) usage 8 19 ;;
  esac
}

main "$@"
