#!/usr/bin/env bash
# The deployment as a DBA meets it (issue 18): a clean Debian 12 with systemd
# as PID 1 in a container (scripts/container.sh), the built package installed
# with apt, three PostgreSQL clusters made Debian's way (pg_createcluster;
# SCRAM over TCP, no trust): 15/main the primary on 5432, 15/replica its
# streaming standby on 5433, 15/other an unrelated primary on 5434. Then
# pgsqlchk is deployed by running README.md's own commands: every block
# marked `<!-- deploy: NAME -->`, extracted from the README as it stands, with
# only the placeholders a reader changes replaced (each one printed). Proves:
# - checks through the real pgsqlchk.socket units (Accept=yes, DynamicUser=,
#   StateDirectory=, RuntimeDirectory=, LoadCredential=) answer 200 and 206;
# - each cluster's drain file drains that cluster only;
# - with PGSQLCHK_CACHE_TTL=1 in a unit's environment, PostgreSQL sessions
#   stay at about one probe a TTL however many checks arrive;
# - failover (standby promoted, the old primary restarted as a primary, the
#   new primary then killed): no write through HAProxy's ReadWrite reaches
#   the old primary, even though another cluster's checks share the
#   package's state directory;
# - diagnostics reach `journalctl -t pgsqlchk`.
#
# As root. Builds the package (make deb) unless PGSQLCHK_DEB names one. The
# root file system is cached (scripts/container.sh rootfs); the first run
# builds it with debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

readonly README=README.md
readonly CONTAINER=scripts/container.sh
# What the test bed installs besides the package's own dependencies: the
# servers it deploys in front of, curl as HAProxy's stand-in, sudo because the
# README's commands use it.
readonly BED_PACKAGES=(postgresql haproxy curl sudo)
readonly PRIMARY=15/main REPLICA=15/replica OTHER=15/other
readonly PRIMARY_PORT=5432 REPLICA_PORT=5433 OTHER_PORT=5434
# Check ports: the package's socket for 15/main, the README's example for the
# second cluster, and one more for the third.
readonly PRIMARY_CHECK=23267 REPLICA_CHECK=23268 OTHER_CHECK=23277
# Agent ports: the package's agent socket for 15/main, the README's example for
# the second cluster, and one more for the third.
readonly PRIMARY_AGENT=23269 REPLICA_AGENT=23270 OTHER_AGENT=23279
readonly RW_PORT=5000
readonly CACHE_TTL=1
# Secrets of the test bed, random each run: the monitoring role's (the README's
# CHANGE-ME placeholder), the replication role's and the client role's.
CHECK_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
BED_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
readonly CHECK_PASSWORD BED_PASSWORD

WORK=$(mktemp -d /tmp/pgsqlchk-deploy.XXXXXX)
readonly WORK ROOT=$WORK/root
cleanup() {
  bash "$CONTAINER" stop "$ROOT" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# inside COMMAND...: runs COMMAND in the container, as root.
inside() { bash "$CONTAINER" run "$ROOT" "$@"; }

# sql CLUSTER STATEMENT: one value, as the postgres superuser over the socket.
sql() { inside runuser -u postgres -- psql --cluster "$1" -d postgres -XAtq -c "$2"; }

# check PORT [PATH]: the status line of a check through the socket on PORT.
check() {
  local answer
  answer=$(inside curl -s -i -m 5 "http://127.0.0.1:$1${2:-/}") || true
  echo "${answer%%$'\r'*}"
}

# answers PORT CODE: the check on PORT answers CODE.
answers() {
  local line
  line=$(check "$1")
  [[ $line == "HTTP/1.1 $2 "* ]] || { echo "     port $1: ${line:-no answer}, expected $2"; return 1; }
}

# within SECONDS COMMAND...: COMMAND succeeds within SECONDS, tried every 0.25 s.
within() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

# readme_block NAME: the ```sh block right after `<!-- deploy: NAME -->`.
# Dies when there is none: a renamed or removed block must not pass unseen.
readme_block() {
  local block
  block=$(awk -v marker="<!-- deploy: $1 -->" '
    found == 1 { if ($0 == "```sh") { found = 2; next } else exit }
    found == 2 { if ($0 == "```") exit; print; next }
    $0 == marker { found = 1 }' "$README")
  [[ -n $block ]] || die "$README has no \`\`\`sh block after <!-- deploy: $1 -->"
  printf '%s\n' "$block"
}

# show_changes WHAT ORIGINAL CHANGED: prints each line the test changed.
show_changes() {
  local line
  # diff's status 1 only says that the files differ.
  { diff "$2" "$3" || true; } | while IFS= read -r line; do
    [[ $line != "> "* ]] || printf '     %s, placeholder replaced: %s\n' "$1" "${line#> }"
  done
}

# deploy NAME [SED-EXPRESSION...] [< INPUT]: runs README block NAME inside,
# from /root, with set -eu, each expression applied first (render checks that
# each matched) and every changed line shown.
deploy() {
  local name=$1 script changed
  script=$WORK/deploy-$name.sh
  shift
  readme_block "$name" >"$script.readme"
  render "$script.readme" "$script" "$@" >/dev/null
  show_changes "README $name" "$script.readme" "$script"
  cp "$script" "$ROOT/root/deploy-$name.sh"
  # setsid: no terminal, so what asks for a password (psql's \password)
  # reads the test's input.
  inside setsid -w sh -c "cd /root && exec bash -eu -o pipefail deploy-$name.sh" >"$WORK/$name.log" 2>&1 ||
    { fail "README block '$name' runs"; sed 's/^/     /' "$WORK/$name.log" | tail -n 20; return 1; }
  pass "README block '$name' runs"
}

boot() {
  local deb=${PGSQLCHK_DEB:-} depends
  if [[ -z $deb ]]; then
    make --no-print-directory deb >"$WORK/deb.log" 2>&1 || die "make deb failed" "$WORK/deb.log"
    deb=$(sed -n 's/^built \(.*\.deb\)$/\1/p' "$WORK/deb.log")
  fi
  [[ -f $deb ]] || die "no package at '$deb'"
  # The package's own dependencies go into the cached root file system too,
  # so apt resolves them inside without a mirror.
  depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/[|(].*//; s/[[:space:]]//g' | grep .)
  # shellcheck disable=SC2086 # one package a word
  local tarball started=$SECONDS
  tarball=$(bash "$CONTAINER" rootfs "${BED_PACKAGES[@]}" $depends)
  echo "     root file system: $tarball ($((SECONDS - started)) s)"
  started=$SECONDS
  bash "$CONTAINER" boot "$ROOT" "$tarball"
  echo "     booted with systemd as PID 1 in $((SECONDS - started)) s"
  cp "$deb" "$ROOT/root/"
  # Nobody answers apt's questions here.
  echo 'APT::Get::Assume-Yes "true";' >"$ROOT/etc/apt/apt.conf.d/90pgsqlchk-test"
}

# The database side of the bed, which the README takes as given: a primary,
# its streaming standby (a base backup over TCP with SCRAM) and an unrelated
# cluster, each from pg_createcluster; a client role and a table that records
# which server took each write.
make_clusters() {
  inside pg_createcluster "${PRIMARY%/*}" "${PRIMARY#*/}" -p "$PRIMARY_PORT" --start >/dev/null
  inside pg_createcluster "${OTHER%/*}" "${OTHER#*/}" -p "$OTHER_PORT" --start >/dev/null
  sql "$PRIMARY" "CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$BED_PASSWORD';
    CREATE ROLE app LOGIN PASSWORD '$BED_PASSWORD';
    CREATE TABLE writes (phase text, port int);
    GRANT INSERT, SELECT ON writes TO app"
  printf '127.0.0.1:*:*:replicator:%s\n' "$BED_PASSWORD" | inside install -o postgres -m 600 /dev/stdin /var/lib/postgresql/.pgpass
  printf '127.0.0.1:*:*:app:%s\n' "$BED_PASSWORD" | inside install -m 600 /dev/stdin /root/.pgpass
  # Debian's way to a standby: a cluster of its own (configuration, port),
  # its data directory replaced by a base backup of the primary.
  inside pg_createcluster "${REPLICA%/*}" "${REPLICA#*/}" -p "$REPLICA_PORT" >/dev/null
  inside find "/var/lib/postgresql/$REPLICA" -mindepth 1 -delete
  inside runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U replicator -X stream -R \
    -D "/var/lib/postgresql/$REPLICA" >/dev/null
  inside pg_ctlcluster "${REPLICA%/*}" "${REPLICA#*/}" start
  if [[ $(sql "$REPLICA" "SELECT pg_is_in_recovery()") == t ]]; then
    pass "bed: $PRIMARY primary, $REPLICA its streaming standby, $OTHER unrelated (pg_createcluster, SCRAM over TCP)"
  else
    die "$REPLICA is not a standby"
  fi
}

# The README's steps, for each cluster what the README says to do for it.
deploy_readme() {
  local peers=127.0.0.1:$PRIMARY_PORT,127.0.0.1:$REPLICA_PORT
  deploy install
  deploy role
  deploy role "s#15/main#$OTHER#"
  local cluster
  for cluster in "$PRIMARY" "$REPLICA" "$OTHER"; do
    if [[ $cluster == "$PRIMARY" ]]; then deploy hba; else deploy hba "s#15/main#$cluster#g" "s#15 main#${cluster/\// }#"; fi
  done
  printf '%s\n%s\n' "$CHECK_PASSWORD" "$CHECK_PASSWORD" >"$WORK/password"
  deploy peer-password "s#CHANGE-ME#$CHECK_PASSWORD#" <"$WORK/password"
  deploy peer-password "s#15/main#$OTHER#" "s#CHANGE-ME#$CHECK_PASSWORD#" <"$WORK/password"
  # The guard's nodes: both clusters of this one host. The IPAddressAllow=
  # placeholders stay: localhost is allowed already.
  deploy socket "s#192\.0\.2\.21:5432,192\.0\.2\.22:5432#$peers#"
  deploy cluster "s#^name=.*#name=${REPLICA/\//-} pgport=$REPLICA_PORT checkport=$REPLICA_CHECK agentport=$REPLICA_AGENT peers=$peers#"
  deploy cluster "s#^name=.*#name=${OTHER/\//-} pgport=$OTHER_PORT checkport=$OTHER_CHECK agentport=$OTHER_AGENT peers=127.0.0.1:$OTHER_PORT#"
  deploy preflight
  deploy test-by-hand
  deploy haproxy-install
  # What the README tells the reader to edit: the nodes (here two clusters of
  # one host, so the second one's check and agent ports too) and, on a single
  # HAProxy host, the peers section.
  render "$ROOT/etc/haproxy/haproxy.cfg" "$WORK/haproxy.cfg" \
    "s#192\.0\.2\.21:5432#127.0.0.1:$PRIMARY_PORT#" \
    "s#192\.0\.2\.22:5432 check port 23267#127.0.0.1:$REPLICA_PORT check port $REPLICA_CHECK#" \
    "s#^(\tserver pg2 .* agent-port )$PRIMARY_AGENT #\1$REPLICA_AGENT #" \
    "s#^(\tpeer haproxy1 )192\.0\.2\.10:#\1127.0.0.1:#" \
    "s/^(\tpeer haproxy2 )/#\1/" >/dev/null
  show_changes /etc/haproxy/haproxy.cfg "$ROOT/etc/haproxy/haproxy.cfg" "$WORK/haproxy.cfg"
  cp "$WORK/haproxy.cfg" "$ROOT/etc/haproxy/haproxy.cfg"
  deploy haproxy-start
}

# directories_in_place: the guard's and the cache's directories, as the
# units' StateDirectory= and RuntimeDirectory= leave them, the user's.
directories_in_place() {
  local owners
  owners=$(inside stat -L -c '%n %U %a' /var/lib/pgsqlchk /run/pgsqlchk)
  [[ $owners == $'/var/lib/pgsqlchk pgsqlchk 700\n/run/pgsqlchk pgsqlchk 700' ]] || { echo "     $owners"; return 1; }
}

test_socket_units() {
  local before after
  before=$(inside systemctl show -P NAccepted pgsqlchk.socket)
  expect "pgsqlchk.socket ($PRIMARY): 200" answers "$PRIMARY_CHECK" 200
  expect "pgsqlchk-${REPLICA/\//-}.socket ($REPLICA): 206" answers "$REPLICA_CHECK" 206
  expect "pgsqlchk-${OTHER/\//-}.socket ($OTHER): 200" answers "$OTHER_CHECK" 200
  after=$(inside systemctl show -P NAccepted pgsqlchk.socket)
  expect "the answer came from pgsqlchk.socket's own service (NAccepted $before -> $after)" test "$after" -gt "$before"
  expect "the check runs as the package's user pgsqlchk, its directories in place" directories_in_place
}

# agent PORT LINE: the first line the agent on PORT answers to LINE.
agent() {
  # shellcheck disable=SC2016 # expanded inside
  inside bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s\n" "$2" >&3 && head -n 1 <&3' sh "$1" "$2" | tr -d '\r'
}

# haproxy_stat BACKEND SERVER COLUMN: one column of HAProxy's CSV statistics.
haproxy_stat() {
  inside curl -s -m 5 "http://127.0.0.1:7000/stats;csv" | awk -F, -v backend="$1" -v server="$2" -v column="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == column || $i == "# " column) field = i; next }
    $1 == backend && $2 == server { print $field }'
}

# Each cluster's agent socket answers HAProxy's agent-check, and HAProxy takes
# the primary's maxconn from it, as haproxy.cfg's agent-send asks.
test_agents() {
  local primary replica other
  primary=$(agent "$PRIMARY_AGENT" 'maxconn=only&maxconn_role=app')
  replica=$(agent "$REPLICA_AGENT" 'lag=64MB')
  other=$(agent "$OTHER_AGENT" 'lag=64MB')
  expect "pgsqlchk-agent.socket ($PRIMARY) answers maxconn: '$primary'" grep -Eqx 'maxconn:[0-9]+' <<<"$primary"
  expect "pgsqlchk-agent-${REPLICA/\//-}.socket ($REPLICA) answers its weight: '$replica'" grep -Eq '^(ready )?up' <<<"$replica"
  expect "pgsqlchk-agent-${OTHER/\//-}.socket ($OTHER) answers its weight: '$other'" grep -Eq '^(ready )?up' <<<"$other"
  expect "HAProxy's ReadWrite pg1 takes its maxconn from the agent (${primary#maxconn:})" \
    within 10 readwrite_maxconn_is "${primary#maxconn:}"
}

readwrite_maxconn_is() { [[ $(haproxy_stat pg_readwrite pg1 slim) == "$1" ]]; }

# The README's preflight block passed during the deployment; with the peers'
# password broken it must fail and say which peer and why (the guard would
# then silently ask no one).
test_preflight() {
  local output status=0
  inside cp -p /etc/pgsqlchk/pgpass /root/pgpass.good
  echo '*:*:postgres:pgsqlchk:not-the-password' | inside install -m 600 /dev/stdin /etc/pgsqlchk/pgpass
  output=$(inside setsid -w sh -c "cd /root && exec bash -eu deploy-preflight.sh" 2>&1) || status=$?
  inside cp -p /root/pgpass.good /etc/pgsqlchk/pgpass
  expect "--preflight with the peers' password broken: exit 1" test "$status" = 1
  if grep -q "^FAIL peer 127.0.0.1:$REPLICA_PORT: authentication failed" <<<"$output"; then
    pass "--preflight names the peer whose login fails, and why"
  else
    fail "--preflight names the peer whose login fails, and why"
    sed 's/^/     /' <<<"$output"
  fi
}

test_drain_per_cluster() {
  local drain=/etc/pgsqlchk/${REPLICA/\//-}/maintenance
  inside touch "$drain"
  expect "the drain file of $REPLICA ($drain): 404 there" answers "$REPLICA_CHECK" 404
  expect "the drain file of $REPLICA leaves $PRIMARY in rotation: 200" answers "$PRIMARY_CHECK" 200
  inside rm "$drain"
}

# sessions CLUSTER: pg_stat_database.sessions of its database postgres.
sessions() { sql "$1" "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'"; }

test_cache_under_unit() {
  local unit_env=/etc/default/pgsqlchk-${OTHER/\//-} before after started elapsed checks=40 bound
  echo "PGSQLCHK_CACHE_TTL=$CACHE_TTL" | inside tee -a "$unit_env" >/dev/null
  before=$(sessions "$OTHER")
  started=$(date +%s%N)
  # shellcheck disable=SC2016 # expanded inside
  inside sh -c 'for i in $(seq "$1"); do curl -s -o /dev/null "http://127.0.0.1:$2/"; sleep 0.05; done' \
    sh "$checks" "$OTHER_CHECK"
  elapsed=$((($(date +%s%N) - started) / 1000000))
  after=$(sessions "$OTHER")
  # A probe of this guarded primary opens two sessions (its own and itself as
  # its one peer); one probe a TTL, a partial TTL at each end, and the
  # session that reads the count.
  bound=$((2 * (elapsed / (CACHE_TTL * 1000) + 2) + 1))
  if ((after - before <= bound)); then
    pass "cache under the real unit: $checks checks in $elapsed ms, $((after - before)) sessions (at most $bound)"
  else
    fail "cache under the real unit: $checks checks in $elapsed ms made $((after - before)) sessions, more than $bound"
    # Why, as the checks said it: a cache that is off says so in the journal.
    inside journalctl -q -t pgsqlchk --no-pager | grep 'result cache' | tail -n 1 | sed 's/^/     /' || true
  fi
  inside sed -i "/^PGSQLCHK_CACHE_TTL=/d" "$unit_env"
}

# write PHASE: one client write through HAProxy's ReadWrite, recording the
# phase and the port of the server that took it; fails when none did.
write() {
  inside psql -h 127.0.0.1 -p "$RW_PORT" -U app -d postgres -XAtq -w \
    -c "INSERT INTO writes VALUES ('$1', pg_catalog.inet_server_port())" >/dev/null 2>&1
}

# landed CLUSTER PHASE: how many writes of PHASE the cluster holds.
landed() { sql "$1" "SELECT count(*) FROM writes WHERE phase = '$2'"; }

# fenced: the old primary's check says it is stale or fenced.
fenced() {
  local body
  body=$(inside curl -s -m 5 "http://127.0.0.1:$PRIMARY_CHECK/") || true
  [[ $body == "stale primary"* || $body == *fence* ]]
}

# other_checks N: N checks of the unrelated cluster, which share the package's
# state directory with the others.
other_checks() {
  local i
  for ((i = 0; i < $1; i++)); do check "$OTHER_CHECK" >/dev/null; done
}

test_failover() {
  expect "HAProxy's ReadWrite (port $RW_PORT) sends writes to the primary" \
    within 15 write before
  expect "a write before the failover landed on $PRIMARY" test "$(landed "$PRIMARY" before)" -ge 1

  inside pg_ctlcluster "${PRIMARY%/*}" "${PRIMARY#*/}" stop -m immediate
  inside pg_ctlcluster "${REPLICA%/*}" "${REPLICA#*/}" promote
  expect "failover: after the promotion, writes through $RW_PORT reach the new primary $REPLICA" \
    within 15 write promoted

  # A service manager or an admin starts the old primary again, unrewound.
  inside pg_ctlcluster "${PRIMARY%/*}" "${PRIMARY#*/}" start
  expect "the old primary, restarted as a primary, answers 503 stale primary (fenced)" within 10 fenced

  inside pg_ctlcluster "${REPLICA%/*}" "${REPLICA#*/}" stop -m immediate
  # The unrelated cluster's checks, then writes through HAProxy for longer
  # than it takes to mark a server UP (rise 2, fastinter 500ms).
  local attempts=0 succeeded=0
  other_checks 5
  while ((attempts < 20)); do
    if write after-kill; then succeeded=$((succeeded + 1)); fi
    attempts=$((attempts + 1))
    ((attempts % 5)) || other_checks 2
    sleep 0.3
  done
  local on_old
  on_old=$(landed "$PRIMARY" after-kill)
  if [[ $on_old == 0 ]]; then
    pass "failover: with the new primary dead, no write through $RW_PORT reached the old primary ($succeeded of $attempts accepted)"
  else
    fail "failover: $on_old of $attempts writes through $RW_PORT reached the old primary after the new one died"
  fi
  expect "two clusters share /var/lib/pgsqlchk: the other cluster's checks left the old primary fenced" fenced
  inside pg_ctlcluster "${REPLICA%/*}" "${REPLICA#*/}" start
  echo "     writes: before $(landed "$REPLICA" before), after the promotion $(landed "$REPLICA" promoted) on $REPLICA;" \
    "on $PRIMARY after it restarted: $(landed "$PRIMARY" promoted) + $on_old"
}

# journal_has TEXT: a line of `journalctl -t pgsqlchk` inside holds TEXT.
journal_has() {
  local journal
  journal=$(inside journalctl -q -t pgsqlchk --no-pager) || true
  [[ $journal == *"$1"* ]]
}

test_journal() {
  expect "diagnostics in journalctl -t pgsqlchk (the stale-primary finding)" journal_has "stale primary"
}

main() {
  ((EUID == 0)) || die "run as root (debootstrap, systemd-nspawn)"
  bash scripts/deps.sh container package
  local started=$SECONDS
  boot
  make_clusters
  deploy_readme
  echo "     deployed in $((SECONDS - started)) s"
  test_socket_units
  test_agents
  test_preflight
  test_drain_per_cluster
  test_cache_under_unit
  test_failover
  test_journal
  echo "     whole test: $((SECONDS - started)) s"
  finish_tests
}

main "$@"
