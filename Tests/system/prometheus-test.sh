#!/usr/bin/env bash
# The alerts of prometheus/ against a real Prometheus and real servers:
# - promtool checks the rules and runs their unit tests
#   (prometheus/pgsqlchk.rules.test.yml), and checks the sample prometheus.yml;
# - the rules' lag threshold is the lag= of haproxy/haproxy.cfg's agent;
# - a three-node cluster of its own (scripts/cluster.sh start-three), each
#   node's check served by systemd-socket-activate --inetd -a as
#   pgsqlchk.socket serves it, with --peers and a state directory (the
#   stale-primary guard); Prometheus, from the sample prometheus.yml, scrapes
#   their /metrics every second and evaluates the shipped rules every second;
# - a healthy cluster raises no alert; replay paused on a standby while the
#   primary writes 96 MiB of WAL raises PGSQLChkStandbyLagging for that
#   standby alone, and resuming replay clears it; after a failover the old
#   primary, restarted as a primary, raises PGSQLChkStalePrimaryRefused for
#   itself alone (not PGSQLChkTwoPrimaries, not PGSQLChkNoPrimary).
# The live rules are a copy in which only `for:` is 0s, so that an alert
# fires at the first evaluation that sees its condition; the shipped `for:`
# values are what the promtool tests pin.
#
# Run as root after `make build`, with a run directory and ports of its own
# (scripts/test.sh gives them): PGSQLCHK_RUN_DIR, PGSQLCHK_PRIMARY_PORT,
# PGSQLCHK_STANDBY_PORT, PGSQLCHK_STANDBY2_PORT for PostgreSQL;
# PGSQLCHK_PRIMARY_CHECK_PORT, PGSQLCHK_STANDBY_CHECK_PORT,
# PGSQLCHK_STANDBY2_CHECK_PORT for the checks; PGSQLCHK_PROMETHEUS_PORT for
# Prometheus's web port. It starts and stops its own cluster. Prints one line
# per check and a last line "N passed, M failed"; exits 1 on any failure. A
# missing tool is a failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

: "${PGSQLCHK_RUN_DIR:?give the test a run directory of its own}" "${PGSQLCHK_STANDBY2_PORT:?}" \
  "${PGSQLCHK_STANDBY2_CHECK_PORT:?}" "${PGSQLCHK_PROMETHEUS_PORT:?}"
readonly BINARY=${PGSQLCHK_BINARY:-$PWD/.build/release/pgsqlchk}
readonly RULES=prometheus/pgsqlchk.rules.yml
readonly RULES_TEST=prometheus/pgsqlchk.rules.test.yml
readonly SCRAPE_SAMPLE=prometheus/prometheus.yml
readonly PROMETHEUS_URL=http://127.0.0.1:$PGSQLCHK_PROMETHEUS_PORT
# How long an alert may take to appear or go: scrapes and evaluations every
# second, a check's deadline 1.5 s, replay catching up 96 MiB.
readonly ALERT_WAIT_SECONDS=30
# WAL segments (16 MiB each) the primary switches through while the standby's
# replay is paused: 96 MiB, over the rules' 64 MiB.
readonly LAG_SEGMENTS=6
readonly NODES=(primary standby standby2)
declare -A CHECK_PORT=([primary]=$PRIMARY_CHECK_PORT [standby]=$STANDBY_CHECK_PORT [standby2]=$PGSQLCHK_STANDBY2_CHECK_PORT)
declare -A PG_PORT=([primary]=$PRIMARY_PORT [standby]=$STANDBY_PORT [standby2]=$STANDBY2_PORT)
WORK=$(mktemp -d /tmp/pgsqlchk-prometheus.XXXXXX)
readonly WORK

pids=()
finish() {
  local pid
  for pid in "${pids[@]}"; do stop_process "$pid"; done
  bash scripts/cluster.sh stop >/dev/null 2>&1
  rm -rf "$WORK"
  finish_tests
}
trap 'fail "interrupted by a signal"; exit 130' INT TERM
# A test that cannot go on (die) fails the run, whatever passed before it.
trap 'status=$?; ((status == 0)) || fail "stopped before the end (exit $status)"; finish || status=1; exit "$status"' EXIT

require_tools() {
  bash scripts/deps.sh monitoring cluster e2e || die "scripts/deps.sh monitoring cluster e2e failed"
  local tool
  for tool in promtool prometheus systemd-socket-activate curl python3; do
    command -v "$tool" >/dev/null || die "no $tool (scripts/deps.sh monitoring)"
  done
  [[ -x $BINARY ]] || die "no binary at $BINARY; run make build"
}

test_promtool() {
  expect "promtool check rules $RULES" quietly promtool check rules "$RULES"
  # Run where the test file is: it names the rules file relative to itself.
  expect "promtool test rules $RULES_TEST" quietly bash -c "cd prometheus && promtool test rules ${RULES_TEST#prometheus/}"
}

quietly() {
  local output
  output=$("$@" 2>&1) || {
    printf '     %s\n' "$output" | tail -n 30
    return 1
  }
}

# The rules alert on the lag HAProxy's checks refuse: the agent's lag= in the
# HAProxy sample, in MB as pgsqlchk reads it (powers of 1024).
test_threshold_matches_haproxy() {
  local haproxy rule
  haproxy=$(grep -o 'agent-send "lag=[0-9]*MB' haproxy/haproxy.cfg | grep -o '[0-9]*' | sort -u)
  rule=$(sed -n 's/.*pgsqlchk_replication_lag_bytes > \([0-9]*\) \* 1024 \* 1024$/\1/p' "$RULES")
  if [[ -n $haproxy && $haproxy != *$'\n'* && $rule == "$haproxy" ]] && grep -q "lag=${haproxy}MB answer 503" "$RULES"; then
    pass "PGSQLChkStandbyLagging's threshold is haproxy.cfg's lag=${haproxy}MB"
  else
    fail "PGSQLChkStandbyLagging's threshold (${rule:-none} MiB) is not haproxy.cfg's agent lag= (${haproxy:-none} MB), or its description does not say lag=${rule}MB"
  fi
}

# Each node's check, as pgsqlchk.socket runs it: the sample environment, the
# node's socket and port, the guard's peers and a state directory.
start_checks() {
  local node peers="" pid environment
  for node in "${NODES[@]}"; do peers+=${peers:+,}127.0.0.1:${PG_PORT[$node]}; done
  for node in "${NODES[@]}"; do
    install -d -m 0700 "$WORK/state-$node"
    mapfile -t environment < <(environment_options systemd/pgsqlchk.default)
    pid=$(start_activator "${CHECK_PORT[$node]}" "$WORK/activator-$node.log" "${environment[@]}" \
      -E "PGHOST=$PGSQLCHK_SOCKET_DIR" -E "PGPORT=${PG_PORT[$node]}" -E "PGSQLCHK_PEERS=$peers" \
      -E "PGSQLCHK_STATE_DIR=$WORK/state-$node" "$BINARY") || die "starting the check of $node failed"
    pids+=("$pid")
  done
}

# The sample scrape configuration with this test's targets, Prometheus's
# intervals at one second (two for the scrape timeout, above the check's
# deadline), and the rules with every `for:` at 0s.
start_prometheus() {
  local targets="" node
  for node in "${NODES[@]}"; do targets+=${targets:+, }"'127.0.0.1:${CHECK_PORT[$node]}'"; done
  render "$RULES" "$WORK/pgsqlchk.rules.yml" 's/^( +for: ).*/\10s/' >/dev/null
  render "$SCRAPE_SAMPLE" "$WORK/prometheus.yml" \
    "s|^rule_files:|global:\\n  evaluation_interval: 1s\\nrule_files:|" \
    "s|^( +- )/etc/prometheus/rules/pgsqlchk.rules.yml|\\1$WORK/pgsqlchk.rules.yml|" \
    "s|^( +scrape_interval: ).*|\\12s|" \
    "s|^( +scrape_timeout: ).*|\\12s|" \
    "s|^( +- targets: ).*|\\1[$targets]|" >/dev/null
  expect "promtool check config: the sample prometheus.yml with this test's targets" \
    quietly promtool check config "$WORK/prometheus.yml"
  setsid prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
    --web.listen-address="127.0.0.1:$PGSQLCHK_PROMETHEUS_PORT" </dev/null >"$WORK/prometheus.log" 2>&1 &
  wait_until 20 "Prometheus is not ready on $PGSQLCHK_PROMETHEUS_PORT" "$WORK/prometheus.log" \
    curl -sf -o /dev/null "$PROMETHEUS_URL/-/ready"
  pids+=("$(listener_pid "$PGSQLCHK_PROMETHEUS_PORT")")
}

# The firing alerts, one "ALERTNAME NODE" a line, sorted (NODE: the node whose
# check port is the alert's instance, "-" for a cluster-wide alert).
firing_alerts() {
  curl -sf "$PROMETHEUS_URL/api/v1/alerts" | python3 -c '
import json, sys
nodes = dict(arg.split("=") for arg in sys.argv[1:])
alerts = json.load(sys.stdin)["data"]["alerts"]
lines = sorted(a["labels"]["alertname"] + " " + nodes.get(a["labels"].get("instance"), a["labels"].get("instance", "-"))
               for a in alerts if a["state"] == "firing")
print("\n".join(lines))' $(for node in "${NODES[@]}"; do echo "127.0.0.1:${CHECK_PORT[$node]}=$node"; done)
}

# Every target scraped at least once, and up.
targets_up() {
  curl -sf "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=count(up{job="pgsqlchk"} == 1)' |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; sys.exit(not (r and r[0]["value"][1] == "3"))'
}

# expect_firing NAME EXPECTED: passes once the firing alerts are exactly
# EXPECTED (lines "ALERTNAME NODE"; empty: none) and stay so for three
# evaluations; fails with what fired instead after ALERT_WAIT_SECONDS.
expect_firing() {
  local name=$1 expected=$2 deadline=$((SECONDS + ALERT_WAIT_SECONDS)) started=$SECONDS firing steady=0
  while ((SECONDS < deadline)); do
    firing=$(firing_alerts)
    if [[ $firing == "$expected" ]]; then
      ((++steady < 3)) || { pass "$name (after $((SECONDS - started)) s)"; return; }
    else
      steady=0
    fi
    sleep 1
  done
  fail "$name: firing after $ALERT_WAIT_SECONDS s: [${firing//$'\n'/, }], expected [${expected//$'\n'/, }]"
}

psql_on() {
  local node=$1
  shift
  bash scripts/cluster.sh psql "$node" -X -q -At -v ON_ERROR_STOP=1 "$@"
}

# A metric of NODE's /metrics, as Prometheus last scraped it.
scraped() {
  curl -sf "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1{instance=\"127.0.0.1:${CHECK_PORT[$2]}\"}" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "absent")'
}

test_lagging_standby() {
  psql_on standby -c 'SELECT pg_catalog.pg_wal_replay_pause()' >/dev/null || die "pausing replay on the standby failed"
  local segment
  psql_on primary -c 'CREATE TABLE IF NOT EXISTS prometheus_lag (written timestamptz)' >/dev/null
  for ((segment = 0; segment < LAG_SEGMENTS; segment++)); do
    psql_on primary -c 'INSERT INTO prometheus_lag VALUES (now())' -c 'SELECT pg_catalog.pg_switch_wal()' >/dev/null ||
      die "writing WAL on the primary failed"
  done
  expect_firing "replay paused on the standby, $((LAG_SEGMENTS * 16)) MiB written: PGSQLChkStandbyLagging for the standby alone" \
    "PGSQLChkStandbyLagging standby"
  echo "     the standby's pgsqlchk_replication_lag_bytes: $(scraped pgsqlchk_replication_lag_bytes standby)"
  psql_on standby -c 'SELECT pg_catalog.pg_wal_replay_resume()' >/dev/null || die "resuming replay on the standby failed"
  expect_firing "replay resumed: no alert" ""
}

test_fenced_primary() {
  bash scripts/cluster.sh pg_ctl primary stop -m immediate -w >/dev/null || die "stopping the primary failed"
  bash scripts/cluster.sh pg_ctl standby promote -w >/dev/null || die "promoting the standby failed"
  bash scripts/cluster.sh pg_ctl primary start -w >/dev/null || die "restarting the old primary failed"
  expect_firing "the old primary restarted as a primary after a failover: PGSQLChkStalePrimaryRefused for it alone" \
    "PGSQLChkStalePrimaryRefused primary"
  local refused
  refused=$(scraped pgsqlchk_stale_primary_refused primary)
  expect "the old primary's /metrics, as scraped: pgsqlchk_stale_primary_refused 1 (got $refused)" test "$refused" = 1
  if compgen -G "$WORK/state-primary/fence-*" >/dev/null; then
    pass "the old primary's check wrote its fence file"
  else
    fail "no fence file in $WORK/state-primary"
  fi
}

main() {
  require_tools
  test_promtool
  test_threshold_matches_haproxy
  bash scripts/cluster.sh start-three >/dev/null || die "cluster.sh start-three failed" "$PGSQLCHK_RUN_DIR/setup.log"
  # shellcheck disable=SC1091 # written by cluster.sh start-three
  . "$PGSQLCHK_RUN_DIR/env"
  start_checks
  start_prometheus
  wait_until "$ALERT_WAIT_SECONDS" "Prometheus did not scrape all three checks" "$WORK/prometheus.log" targets_up
  pass "Prometheus scrapes the three checks through socket activation"
  expect_firing "a healthy cluster: no alert" ""
  test_lagging_standby
  test_fenced_primary
}

main
