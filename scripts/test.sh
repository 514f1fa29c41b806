#!/usr/bin/env bash
# The whole test suite, against real servers that this script starts and
# always stops: unit tests; the release binary against a primary and a
# streaming standby; the systemd units and the Debian package; then xinetd and
# HAProxy in front of both nodes (whose failover test changes the cluster, so
# these come after everything that expects the original roles), the drain and
# agent tests, and the end-to-end suite again under socket activation.
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-run}

# Every Debian package the run needs, in one apt-get when some are missing.
bash scripts/deps.sh build cluster e2e units package
swift build --build-tests
# The integration tests run the release binary: what ships is what is tested.
make --no-print-directory build
export PGSQLCHK_BINARY="$PWD/.build/release/pgsqlchk"

bash scripts/cluster.sh start
trap 'bash scripts/stack.sh stop; bash scripts/cluster.sh stop' EXIT
# shellcheck disable=SC1091 # written by cluster.sh start
. "$run_dir/env"

swift test --skip-build
bash scripts/units-test.sh
bash scripts/package-test.sh

bash scripts/stack.sh start
# shellcheck disable=SC1091 # written by stack.sh start
. "$run_dir/stack.env"
swift test --skip-build --filter EndToEndTests
# Separate runs: in one, Swift Testing would run them beside each other, and
# the failover above must not overlap the drain and agent tests.
swift test --skip-build --filter HAProxyFeatureTests

# The same end-to-end suite with every check spawned by systemd-socket-activate
# --inetd --accept, as pgsqlchk.socket does. The failover above swapped the
# roles; the suite finds them.
bash scripts/stack.sh stop
PGSQLCHK_SUPERVISOR=systemd bash scripts/stack.sh start
# shellcheck disable=SC1091 # written by stack.sh start
. "$run_dir/stack.env"
swift test --skip-build --filter EndToEndTests
