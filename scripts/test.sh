#!/usr/bin/env bash
# The whole test suite: unit tests, then the built binary against a real
# primary and streaming standby that this script starts and always stops.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh build cluster
swift build --build-tests
# The integration tests run the release binary: what ships is what is tested.
make --no-print-directory build
export PGSQLCHK_BINARY="$PWD/.build/release/pgsqlchk"

bash scripts/cluster.sh start
trap 'bash scripts/cluster.sh stop' EXIT
# shellcheck disable=SC1091 # written by cluster.sh start
. "${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-run}/env"

swift test --skip-build
