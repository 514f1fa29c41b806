#!/usr/bin/env bash
# A multi-host test bed on one machine: two HAProxy hosts behind a keepalived
# virtual IP, the database nodes and a client host, each in its own network
# namespace on one bridge. HAProxy, keepalived and xinetd run the shipped
# samples (haproxy/haproxy.cfg, keepalived/keepalived.conf, xinetd/pgsqlchk)
# with test addresses substituted. Run as root.
#
#   pair.sh start | stop | status
#   pair.sh exec HOST COMMAND...     run COMMAND on HOST: hap1 hap2 db client
#   pair.sh haproxy HOST COMMAND     a runtime API command, e.g. "show table pg_readwrite"
#   pair.sh reload-haproxy HOST      what `systemctl reload haproxy` does (SIGUSR2 to the master)
#   pair.sh kill-haproxy HOST        SIGKILL to its master and workers: the process dies
#   pair.sh start-haproxy HOST       start it again
#   pair.sh vip-holder               the host that holds the virtual IP now (or "none")
#
# The network (addresses nowhere else, nothing in the root namespace):
#   bridge br0 in namespace pgpair-lan; 10.213.0.0/24 and fd00:213::/64
#   pgpair-hap1 .11  pgpair-hap2 .12  virtual IP .100 (keepalived)
#   pgpair-db   .21 (pg1: the cluster's primary) .22 (pg2: its standby);
#               both PostgreSQL servers and one xinetd a node run here: one
#               namespace, because the standby replicates over 127.0.0.1
#   pgpair-client .50
# HAProxy reaches the nodes and their checks over IPv6 (server lines
# [fd00:213::21]:PORT), clients reach the virtual IP over IPv4, so both
# families are in every run.
#
# The cluster is scripts/cluster.sh's, started inside pgpair-db with its own
# run dir and ports: PGSQLCHK_RUN_DIR (/tmp/pgsqlchk-run-pair),
# PGSQLCHK_PRIMARY_PORT (57432), PGSQLCHK_STANDBY_PORT (57433). It does not
# touch a cluster that scripts/cluster.sh started in the root namespace.
# PGSQLCHK_BINARY (.build/release/pgsqlchk) is the check. `start` writes
# $RUN/pair.env to source; `stop` removes every namespace, link and process
# it made, as does a `start` that fails half-way.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
. "$SCRIPT_DIR/common.sh"
readonly SCRIPT_DIR
readonly REPOSITORY=${SCRIPT_DIR%/scripts}
export PGSQLCHK_RUN_DIR=${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-run-pair}
export PGSQLCHK_PRIMARY_PORT=${PGSQLCHK_PRIMARY_PORT:-57432}
export PGSQLCHK_STANDBY_PORT=${PGSQLCHK_STANDBY_PORT:-57433}
readonly RUN=$PGSQLCHK_RUN_DIR
readonly PAIR=$RUN/pair
readonly SOURCE_BINARY=${PGSQLCHK_BINARY:-$REPOSITORY/.build/release/pgsqlchk}
readonly BINARY=$PAIR/bin/pgsqlchk
readonly CHECK_USER=pgsqlchk
readonly SCRIPT_USER=keepalived_script

readonly NS_PREFIX=pgpair-
readonly HOSTS=(hap1 hap2 db client)
readonly NET4=10.213.0 NET6=fd00:213:
readonly VIP=$NET4.100
declare -rA HOST_NUMBER=([hap1]=11 [hap2]=12 [db]=21 [client]=50)
# pg1 and pg2 are the HAProxy server names; their check ports differ because
# both nodes share the db namespace (on real hosts both would be 23267).
declare -rA NODE_NUMBER=([primary]=21 [standby]=22)
declare -rA NODE_CHECK_PORT=([primary]=23267 [standby]=23268)
# Two HAProxies share the client role's CONNECTION LIMIT (12 in cluster.sh):
# per-server maxconn x 2 must stay below it (haproxy/haproxy.cfg).
readonly HAPROXY_MAXCONN=5
readonly UP_WAIT_SECONDS=30


make_network() {
  local host number
  ip netns add "$(ns lan)"
  ip -n "$(ns lan)" link add br0 type bridge
  ip -n "$(ns lan)" link set br0 up
  for host in "${HOSTS[@]}"; do
    number=${HOST_NUMBER[$host]}
    ip netns add "$(ns "$host")"
    ip -n "$(ns "$host")" link set lo up
    # Both ends are born inside our namespaces: nothing appears in the root one.
    ip -n "$(ns lan)" link add "$host" type veth peer name eth0 netns "$(ns "$host")"
    ip -n "$(ns lan)" link set "$host" master br0 up
    ip -n "$(ns "$host")" addr add "$NET4.$number/24" dev eth0
    # nodad: usable at once, not after duplicate address detection.
    ip -n "$(ns "$host")" addr add "$NET6:$number/64" dev eth0 nodad
    ip -n "$(ns "$host")" link set eth0 up
  done
  # The db host carries both nodes' addresses.
  ip -n "$(ns db)" addr add "$NET4.${NODE_NUMBER[standby]}/24" dev eth0
  ip -n "$(ns db)" addr add "$NET6:${NODE_NUMBER[standby]}/64" dev eth0 nodad
}

# cluster.sh's servers listen on 127.0.0.1 and trust only it: open them to
# the bridge (the HAProxy hosts connect from their own addresses).
start_cluster() {
  local node
  # cluster.sh start clears $RUN first: our own files come after it.
  on db bash "$SCRIPT_DIR/cluster.sh" start >/dev/null || die "cluster.sh start failed" "$RUN/setup.log"
  install -d -m 755 "$PAIR" "$PAIR/bin"
  # shellcheck disable=SC1091 # written by cluster.sh start
  . "$RUN/env"
  for node in primary standby; do
    printf "listen_addresses = '*'\n" >>"$RUN/$node/postgresql.auto.conf"
    printf 'host all all %s.0/24 trust\nhost all all %s:/64 trust\n' "$NET4" "$NET6" >>"$RUN/$node/pg_hba.conf"
  done
  for node in primary standby; do
    on db bash "$SCRIPT_DIR/cluster.sh" pg_ctl "$node" restart -w -m fast >>"$PAIR/setup.log" 2>&1 ||
      die "restarting $node failed" "$PAIR/setup.log"
  done
}

# xinetd/pgsqlchk as an admin who wants IPv6 would change it: flags IPv6
# (one socket for both families), only_from naming the HAProxy hosts in
# both families.
render_xinetd() {
  local node=$1 port=${NODE_CHECK_PORT[$1]} db_port
  [[ $node == primary ]] && db_port=$PGSQLCHK_PRIMARY_PORT || db_port=$PGSQLCHK_STANDBY_PORT
  render "$REPOSITORY/xinetd/pgsqlchk" "$PAIR/xinetd-$node.conf" \
    "s|^(\s*port\s*=\s*)23267$|\1$port|" \
    "s|^(\s*flags\s*=\s*)IPv4 |\1IPv6 |" \
    "s|^(\s*server\s*=\s*).*$|\1$BINARY|" \
    "s|^(\s*server_args\s*=.*)-h /var/run/postgresql -p 5432|\1-h $PGSQLCHK_SOCKET_DIR -p $db_port|" \
    "s|^(\s*env\s*=.*PGSQLCHK_MAINTENANCE_FILE=)/etc/pgsqlchk/maintenance|\1$PAIR/maintenance-$node|" \
    "s|^(\s*only_from\s*=\s*).*$|\1$NET6:11 $NET6:12 $NET4.11 $NET4.12|" \
    "s|^(\s*log_type\s*=\s*).*$|\1FILE $PAIR/xinetd-$node-checks.log|"
}

start_xinetd() {
  local node=$1
  render_xinetd "$node"
  on db setsid xinetd -dontfork -f "$PAIR/xinetd-$node.conf" -pidfile "$PAIR/xinetd-$node.pid" \
    </dev/null >>"$PAIR/xinetd-$node.log" 2>&1 &
  wait_until 5 "xinetd for $node is not listening" "$PAIR/xinetd-$node.log" \
    eval "[[ -n \$(on db ss -Htln 'sport = :${NODE_CHECK_PORT[$node]}') ]]"
}

render_haproxy() {
  local host=$1
  render "$REPOSITORY/haproxy/haproxy.cfg" "$PAIR/haproxy-$host.cfg" \
    "s|^(\s*log) /dev/log |\1 stdout format raw |" \
    "s|^(\s*stats socket) /run/haproxy/admin.sock |\1 $PAIR/haproxy-$host.sock |" \
    "s|^(\s*localpeer) haproxy1$|\1 haproxy${host#hap}|" \
    "s|^(\s*peer haproxy1) 192\.0\.2\.10:|\1 $NET4.${HOST_NUMBER[hap1]}:|" \
    "s|^(\s*peer haproxy2) 192\.0\.2\.11:|\1 $NET4.${HOST_NUMBER[hap2]}:|" \
    "s| maxconn 80$| maxconn $HAPROXY_MAXCONN|" \
    "/192\.0\.2\.22:5432/s# port 23267( |$)# port ${NODE_CHECK_PORT[standby]}\1#" \
    "s|192\.0\.2\.21:5432|[$NET6:${NODE_NUMBER[primary]}]:$PGSQLCHK_PRIMARY_PORT|" \
    "s|192\.0\.2\.22:5432|[$NET6:${NODE_NUMBER[standby]}]:$PGSQLCHK_STANDBY_PORT|"
  ! grep -n '^[^#]*192\.0\.2\.' "$PAIR/haproxy-$host.cfg" || die "rendered haproxy.cfg still has placeholder addresses"
  haproxy -q -c -f "$PAIR/haproxy-$host.cfg" >"$PAIR/haproxy-check.log" 2>&1 ||
    die "the rendered haproxy.cfg for $host is invalid" "$PAIR/haproxy-check.log"
}

haproxy_command() {
  local host=$1 command=$2
  echo "$command" | socat -t 5 - "UNIX-CONNECT:$PAIR/haproxy-$host.sock"
}

# Both nodes UP where their role puts them, as HAProxy on HOST sees it.
haproxy_sees_nodes() {
  local host=$1 states
  states=$(haproxy_command "$host" "show stat" 2>/dev/null | awk -F, '{ print $1 "/" $2, $18 }') || return 1
  grep -qx 'pg_readwrite/pg1 UP' <<<"$states" && grep -qx 'pg_readonly_standbys/pg2 UP' <<<"$states"
}

cmd_start_haproxy() {
  local host=$1
  live_pid "$PAIR/haproxy-$host.pid" haproxy >/dev/null && die "haproxy on $host is already running"
  # Master-worker mode in the foreground: `log stdout` lands in the log
  # file, and SIGUSR2 to the master reloads as systemd's unit does.
  on "$host" setsid haproxy -W -db -f "$PAIR/haproxy-$host.cfg" -p "$PAIR/haproxy-$host.pid" \
    </dev/null >>"$PAIR/haproxy-$host.log" 2>&1 &
  wait_until 5 "haproxy on $host did not start" "$PAIR/haproxy-$host.log" \
    eval "[[ -S $PAIR/haproxy-$host.sock ]] && live_pid $PAIR/haproxy-$host.pid haproxy >/dev/null"
}

render_keepalived() {
  local host=$1 other
  [[ $host == hap1 ]] && other=hap2 || other=hap1
  render "$REPOSITORY/keepalived/keepalived.conf" "$PAIR/keepalived-$host.conf" \
    "s|^(\s*router_id) haproxy1$|\1 haproxy${host#hap}|" \
    "s|^(\s*unicast_src_ip) 192\.0\.2\.10 |\1 $NET4.${HOST_NUMBER[$host]} |" \
    "s|^(\s*)192\.0\.2\.11( .*)?$|\1$NET4.${HOST_NUMBER[$other]}\2|" \
    "s|^(\s*)192\.0\.2\.100/24 |\1$VIP/24 |"
}

start_keepalived() {
  local host=$1
  render_keepalived "$host"
  # -P: VRRP only; -n -l -G: foreground, log to our file, not syslog.
  on "$host" setsid keepalived -P -n -l -G -f "$PAIR/keepalived-$host.conf" \
    -p "$PAIR/keepalived-$host.pid" -r "$PAIR/keepalived-vrrp-$host.pid" \
    </dev/null >>"$PAIR/keepalived-$host.log" 2>&1 &
}

cmd_vip_holder() {
  local host holders=()
  for host in hap1 hap2; do
    ip -n "$(ns "$host")" -4 -o addr show dev eth0 2>/dev/null | grep -q " $VIP/" && holders+=("$host")
  done
  case ${#holders[@]} in
    0) echo none ;;
    1) echo "${holders[0]}" ;;
    *) echo "both" ;;
  esac
}

vip_held_once() { [[ $(cmd_vip_holder) == hap? ]]; }

write_pair_env() {
  {
    printf 'export PGSQLCHK_RUN_DIR=%q\n' "$RUN"
    printf 'export PGSQLCHK_PAIR_DIR=%q\n' "$PAIR"
    printf 'export PGSQLCHK_PAIR_VIP=%q\n' "$VIP"
    printf 'export PGSQLCHK_PAIR_NS_PREFIX=%q\n' "$NS_PREFIX"
    printf 'export PGSQLCHK_PAIR_NET4=%q\n' "$NET4"
    printf 'export PGSQLCHK_PAIR_NET6=%q\n' "$NET6"
  } >"$RUN/pair.env"
}

cmd_start() {
  bash "$SCRIPT_DIR/deps.sh" cluster e2e pair
  [[ -x $SOURCE_BINARY ]] || die "no binary at $SOURCE_BINARY: run make build, or set PGSQLCHK_BINARY"
  cmd_stop
  trap cmd_stop EXIT
  ensure_system_user "$CHECK_USER"
  ensure_system_user "$SCRIPT_USER"
  make_network
  start_cluster
  install -m 755 "$SOURCE_BINARY" "$BINARY"
  start_xinetd primary
  start_xinetd standby
  local host
  for host in hap1 hap2; do
    render_haproxy "$host"
    cmd_start_haproxy "$host"
  done
  for host in hap1 hap2; do
    wait_until "$UP_WAIT_SECONDS" "HAProxy on $host does not see pg1 primary and pg2 standby UP" \
      "$PAIR/haproxy-$host.log" haproxy_sees_nodes "$host"
    start_keepalived "$host"
  done
  wait_until "$UP_WAIT_SECONDS" "no single host holds the virtual IP $VIP" "$PAIR/keepalived-hap1.log" vip_held_once
  write_pair_env
  trap - EXIT
  echo "pair up in $RUN: virtual IP $VIP on $(cmd_vip_holder); pg1 [$NET6:21]:$PGSQLCHK_PRIMARY_PORT, pg2 [$NET6:22]:$PGSQLCHK_STANDBY_PORT; settings: source $RUN/pair.env"
}

# Every process still in one of our namespaces was started by us (or by a
# daemon we started): after the polite stops, nothing there may survive.
kill_namespace_processes() {
  local name pid
  for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] || continue
    for pid in $(ip netns pids "$name" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
}

stop_pidfile() {
  local pid
  if pid=$(live_pid "$1" "$2"); then
    kill -TERM "$pid" 2>/dev/null || true
  fi
}

cmd_stop() {
  local host name tries
  for host in hap1 hap2; do
    stop_pidfile "$PAIR/keepalived-$host.pid" keepalived
    stop_pidfile "$PAIR/haproxy-$host.pid" haproxy
  done
  stop_pidfile "$PAIR/xinetd-primary.pid" xinetd
  stop_pidfile "$PAIR/xinetd-standby.pid" xinetd
  if [[ -d $RUN ]]; then
    bash "$SCRIPT_DIR/cluster.sh" stop >/dev/null 2>&1 || true
  fi
  tries=20
  while ((tries-- > 0)) && [[ -n $(for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] && ip netns pids "$name"; done) ]]; do
    sleep 0.1
  done
  kill_namespace_processes
  for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] && ip netns del "$name"
  done
  rm -rf "$RUN"
}

cmd_status() {
  local host state=0 name
  for name in $(ip netns list | awk '{ print $1 }'); do
    [[ $name == "$NS_PREFIX"* ]] && echo "namespace $name: $(ip netns pids "$name" | wc -l) processes"
  done
  for host in hap1 hap2; do
    live_pid "$PAIR/haproxy-$host.pid" haproxy >/dev/null && echo "haproxy $host: running" || { echo "haproxy $host: not running"; state=3; }
    live_pid "$PAIR/keepalived-$host.pid" keepalived >/dev/null && echo "keepalived $host: running" || { echo "keepalived $host: not running"; state=3; }
  done
  echo "virtual IP $VIP: $(cmd_vip_holder)"
  return "$state"
}

require_hap() { [[ ${1:-} == hap1 || ${1:-} == hap2 ]] || usage 8 14; }

main() {
  (($# >= 1)) || usage 8 14
  ((EUID == 0)) || die "run as root (namespaces, and the daemons' users)"
  [[ $RUN == /?* ]] || die "PGSQLCHK_RUN_DIR must be an absolute path other than /, not '$RUN'"
  local command=$1 pid
  shift
  case "$command" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    exec)
      [[ -n ${HOST_NUMBER[${1:-}]:-} ]] || usage 8 14
      on "$@"
      ;;
    haproxy) require_hap "${1:-}"; haproxy_command "$1" "$2" ;;
    reload-haproxy)
      require_hap "${1:-}"
      pid=$(live_pid "$PAIR/haproxy-$1.pid" haproxy) || die "haproxy on $1 is not running"
      kill -USR2 "$pid"
      ;;
    kill-haproxy)
      require_hap "${1:-}"
      pid=$(live_pid "$PAIR/haproxy-$1.pid" haproxy) || die "haproxy on $1 is not running"
      # The workers first named, then all at once: a master left alone
      # would exit by itself once its worker died.
      # shellcheck disable=SC2046 # one pid a word
      kill -KILL "$pid" $(pgrep -P "$pid") 2>/dev/null || true
      ;;
    start-haproxy) require_hap "${1:-}"; . "$RUN/env"; cmd_start_haproxy "$1" ;;
    vip-holder) cmd_vip_holder ;;
    *) usage 8 14 ;;
  esac
}

main "$@"
