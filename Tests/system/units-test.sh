#!/usr/bin/env bash
# Tests the systemd units in systemd/ without systemd as PID 1:
# - `systemd-analyze verify` on the units as shipped, and on a copy whose
#   ExecStart is the built binary (verify skips the path check for "-" lines);
# - `systemd-analyze security --offline` exposure of pgsqlchk@.service;
# - the settings the check depends on (stdin/stdout socket, stderr journal);
# - real checks through `systemd-socket-activate --inetd -a`, which is what
#   Accept=yes + StandardInput=socket do, with the environment the service
#   gets from systemd/pgsqlchk.default: curl answers and the raw bytes;
# - the same checks under strace, against the service's seccomp settings.
#
#   Tests/system/units-test.sh [BINARY]   default: .build/release/pgsqlchk (make build)
#
# Needs the test cluster running and its env sourced (scripts/cluster.sh
# start; . $PGSQLCHK_RUN_DIR/env): PGSQLCHK_SOCKET_DIR, PGSQLCHK_*_PORT; and
# the debug build's response-check (swift build), which judges the answers
# with the Swift suites' own ParsedResponse.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

BINARY=$(realpath "${1:-.build/release/pgsqlchk}")
readonly BINARY
readonly RESPONSE_CHECK=$PWD/.build/debug/response-check
readonly SOCKET_UNIT=systemd/pgsqlchk.socket
readonly SERVICE_UNIT=systemd/pgsqlchk@.service
readonly DEFAULTS=systemd/pgsqlchk.default
# The service's exposure (0 safe .. 10 unsafe) must stay at or below this.
readonly MAX_EXPOSURE=1.5
readonly CHECKS_PER_NODE=5
readonly PARALLEL_CHECKS=10

require_tools() {
  bash scripts/deps.sh units
  [[ -x $BINARY ]] || die "no binary at $BINARY; run make build"
  [[ -x $RESPONSE_CHECK ]] || die "no $RESPONSE_CHECK; run swift build"
  : "${PGSQLCHK_SOCKET_DIR:?source the cluster env first (scripts/cluster.sh start)}"
  : "${PGSQLCHK_PRIMARY_PORT:?}" "${PGSQLCHK_STANDBY_PORT:?}"
}

WORK=$(mktemp -d /tmp/pgsqlchk-units.XXXXXX)
readonly WORK
ACTIVATOR_PIDS=()
ACTIVATOR_PORT=
cleanup() {
  local pid
  for pid in "${ACTIVATOR_PIDS[@]}"; do
    stop_process "$pid"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# verify exits 0 on unknown keys and bad values; it only complains, so any
# output is a failure too.
expect_quiet_verify() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1) && [[ -z $output ]]; then
    pass "$name"
  else
    fail "$name"
    printf '     %s\n' "$output"
  fi
}

test_verify() {
  # Documentation=man:pgsqlchk(1) resolves against our own man page.
  mkdir -p "$WORK/man/man1" "$WORK/units"
  cp man/pgsqlchk.1 "$WORK/man/man1/"
  expect_quiet_verify "systemd-analyze verify: units as shipped" \
    env MANPATH="$WORK/man" systemd-analyze verify "$SOCKET_UNIT" "$SERVICE_UNIT"

  cp "$SOCKET_UNIT" "$WORK/units/"
  sed "s|^ExecStart=-/usr/bin/pgsqlchk\$|ExecStart=$BINARY|" "$SERVICE_UNIT" >"$WORK/units/pgsqlchk@.service"
  if grep -qx "ExecStart=$BINARY" "$WORK/units/pgsqlchk@.service"; then
    expect_quiet_verify "systemd-analyze verify: ExecStart is the built binary" \
      systemd-analyze verify --man=no "$WORK/units/pgsqlchk.socket" "$WORK/units/pgsqlchk@.service"
  else
    fail "the service's ExecStart is not 'ExecStart=-/usr/bin/pgsqlchk' (mk/install.mk rewrites that line)"
  fi
}

test_security() {
  local report exposure
  report=$(systemd-analyze security --offline=true "$SERVICE_UNIT" 2>&1 | tail -n 1)
  exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
  if [[ -n $exposure ]] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }'; then
    pass "systemd-analyze security: exposure $exposure <= $MAX_EXPOSURE"
  else
    fail "systemd-analyze security: ${report:-no report} (want <= $MAX_EXPOSURE)"
  fi
}

test_settings() {
  local unit setting
  for setting in "$SOCKET_UNIT ListenStream=23267" "$SOCKET_UNIT Accept=yes" \
    "$SERVICE_UNIT StandardInput=socket" "$SERVICE_UNIT StandardOutput=socket" \
    "$SERVICE_UNIT StandardError=journal" "$SERVICE_UNIT ExecStart=-/usr/bin/pgsqlchk" \
    "$SERVICE_UNIT CollectMode=inactive-or-failed" "$SERVICE_UNIT EnvironmentFile=-/etc/default/pgsqlchk"; do
    unit=${setting%% *}
    setting=${setting#* }
    if grep -qx "$setting" "$unit"; then pass "$(basename "$unit"): $setting"; else fail "$(basename "$unit"): no $setting"; fi
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The service's environment: the sample's active lines, as EnvironmentFile=
# reads them, plus where the test cluster listens.
service_environment() {
  environment_options "$DEFAULTS"
  printf '%s\n' -E "PGHOST=$PGSQLCHK_SOCKET_DIR" -E "PGPORT=$1"
}

# Starts a check service for a PostgreSQL port, running the binary behind an
# optional wrapper command; sets ACTIVATOR_PORT to its check port. (Not a
# command substitution: the pid must reach ACTIVATOR_PIDS.)
start_service() {
  local pg_port=$1 port environment
  shift
  port=$(free_port)
  mapfile -t environment < <(service_environment "$pg_port")
  start_activator "$port" "$WORK/activator-$port.log" "${environment[@]}" "$@" "$BINARY" >"$WORK/activator.pid"
  ACTIVATOR_PIDS+=("$(<"$WORK/activator.pid")")
  ACTIVATOR_PORT=$port
}

# Passes when the bytes on stdin are exactly one good answer with STATUS
# ("200 OK") and BODY.
expect_response() {
  local name=$1 status=$2 body=$3 problems
  if problems=$("$RESPONSE_CHECK" "$status" "$body"); then pass "$name"; else fail "$name: $problems"; fi
}

# curl -si prints the status line, the headers and the body as received.
check_with_curl() {
  local name=$1 port=$2 status=$3 body=$4
  curl -si --max-time 5 "http://127.0.0.1:$port/" >"$WORK/answer" || true
  expect_response "$name" "$status" "$body" <"$WORK/answer"
}

# Every byte the server sends until it closes, for a request as HAProxy's
# `option httpchk` sends it: one response, nothing before or after it.
check_raw() {
  local name=$1 port=$2 status=$3 body=$4
  python3 - "$port" >"$WORK/answer" <<'EOF_PY' || true
import socket, sys
connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
connection.sendall(b"OPTIONS / HTTP/1.0\r\n\r\n")
received = b""
while chunk := connection.recv(4096):
    received += chunk
sys.stdout.buffer.write(received)
EOF_PY
  expect_response "$name" "$status" "$body" <"$WORK/answer"
}

test_socket_activation() {
  local primary standby nowhere i pids=() results=() unused_port
  start_service "$PGSQLCHK_PRIMARY_PORT"
  primary=$ACTIVATOR_PORT
  start_service "$PGSQLCHK_STANDBY_PORT"
  standby=$ACTIVATOR_PORT
  unused_port=$(free_port)
  start_service "$unused_port"
  nowhere=$ACTIVATOR_PORT

  for i in $(seq "$CHECKS_PER_NODE"); do
    check_with_curl "primary, curl $i: 200 primary" "$primary" "200 OK" primary
  done
  for i in $(seq "$CHECKS_PER_NODE"); do
    check_with_curl "standby, curl $i: 206 standby" "$standby" "206 Partial Content" standby
  done
  check_with_curl "no server: 503 no response from server" "$nowhere" "503 no response from server" "no response from server"
  check_raw "primary, raw bytes of an httpchk request: one response" "$primary" "200 OK" primary
  check_raw "standby, raw bytes of an httpchk request: one response" "$standby" "206 Partial Content" standby

  # As many HAProxy checks at once as MaxConnections admits.
  for i in $(seq "$PARALLEL_CHECKS"); do
    curl -s --max-time 5 -o "$WORK/parallel-$i" "http://127.0.0.1:$primary/" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || true
    results+=("$(cat "$WORK/parallel-$((i + 1))" 2>/dev/null)")
  done
  if [[ $(printf '%s\n' "${results[@]}" | grep -cx primary) == "$PARALLEL_CHECKS" ]]; then
    pass "$PARALLEL_CHECKS checks at once: all primary"
  else
    fail "$PARALLEL_CHECKS checks at once: got $(printf '%s|' "${results[@]}")"
  fi
}

# Every syscall of the set a group names, nested groups expanded.
syscall_group() {
  local name
  systemd-analyze syscall-filter "$1" | awk '/^ +[@a-z]/ { print $1 }' | while read -r name; do
    if [[ $name == @* ]]; then syscall_group "$name"; else echo "$name"; fi
  done
}

# What the service's seccomp filters would do to real checks, without PID 1:
# strace checks behind the activator and hold their syscalls against
# SystemCallFilter=@system-service ~@privileged @resources, their sockets
# against RestrictAddressFamilies, their mappings against
# MemoryDenyWriteExecute (no writable and executable memory, no mprotect to
# executable).
test_syscalls() {
  local pg_port used forbidden traces
  for pg_port in "$PGSQLCHK_PRIMARY_PORT" "$PGSQLCHK_STANDBY_PORT" "$(free_port)"; do
    start_service "$pg_port" strace -f -qq -ff -o "$WORK/trace"
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$ACTIVATOR_PORT/" || true
  done
  traces=("$WORK"/trace.*)
  if [[ ! -e ${traces[0]} ]]; then
    fail "strace: no trace of a check"
    return
  fi
  used=$(sed -E 's/^([a-z_0-9]+)\(.*/\1/;t;d' "${traces[@]}" | sort -u)
  forbidden=$(comm -23 <(sort -u <<<"$used") <(syscall_group @system-service | sort -u))
  forbidden+=$(comm -12 <(sort -u <<<"$used") <({ syscall_group @privileged; syscall_group @resources; } | sort -u))
  if [[ -z $forbidden ]]; then
    pass "SystemCallFilter: all $(wc -l <<<"$used") syscalls of the checks allowed"
  else
    fail "SystemCallFilter would deny: $(tr '\n' ' ' <<<"$forbidden")"
  fi
  forbidden=$(grep -hE '^socket\(' "${traces[@]}" | grep -vE '^socket\(AF_(UNIX|INET|INET6),' || true)
  if [[ -z $forbidden ]]; then pass "RestrictAddressFamilies: only AF_UNIX, AF_INET, AF_INET6"; else fail "RestrictAddressFamilies would deny: $forbidden"; fi
  forbidden=$(grep -hE '^(mmap|mprotect|pkey_mprotect)\(' "${traces[@]}" |
    grep -E 'PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE|^(pkey_)?mprotect\(.*PROT_EXEC' || true)
  if [[ -z $forbidden ]]; then pass "MemoryDenyWriteExecute: no W+X mapping"; else fail "MemoryDenyWriteExecute would deny: $forbidden"; fi
}

main() {
  require_tools
  test_verify
  test_security
  test_settings
  test_socket_activation
  test_syscalls
  finish_tests
}

main "$@"
