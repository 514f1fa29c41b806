#!/usr/bin/env bash
# A database-side partition on the namespace test bed of scripts/partition.sh:
# three database hosts, one HAProxy that reaches all three. The links between
# db1 (the primary) and the others are cut, db2 is promoted on the other
# side, and one client writes through HAProxy's ReadWrite port, each row
# naming the node that committed it (inet_server_addr()). Three runs:
#   - --quorum all: db1 steps down before the promotion, and db2, which
#     reaches only two of three, does not serve either: 0 writes on db1,
#     0 on db2. A partition healed before any promotion gives db1 back its
#     200, with no fence file;
#   - --quorum majority: db1 steps down, db2 (two of three) serves: 0 writes
#     on db1, every write on db2;
#   - no --quorum (the control, README's "What it does not cover"): db1 keeps
#     answering 200 and writes reach it after db2's promotion.
# After each heal, db1 sees db2's newer timeline: 503, fenced, its fence
# file written, and it stays so.
# Run as root after `make build`. Prints one line per check and a last line
# "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

readonly PARTITION_SH=scripts/partition.sh
export PGSQLCHK_RUN_DIR=${PGSQLCHK_PARTITION_RUN_DIR:-/tmp/pgsqlchk-run-partition}
# shellcheck source=scripts/common.sh
. scripts/common.sh
readonly WRITE_SECONDS=5
readonly DB1=10.214.0.21 DB2=10.214.0.22
note() { echo "   $*"; }
bed() { bash "$PARTITION_SH" "$@"; }

trap 'fail "interrupted by a signal"; exit 130' INT TERM
trap 'bed stop >/dev/null 2>&1; finish_tests; exit $?' EXIT

# HAProxy's state for pgN in the ReadWrite listener: UP, DOWN, or a transition.
state_of() { bed status | awk -v server="$1" '$1 == server { sub(/^[^ ]+ /, ""); print }'; }
is_up() { [[ $(state_of "$1") == UP ]]; }
is_down() { [[ $(state_of "$1") == DOWN ]]; }
# The check's status code for NODE, asked from the HAProxy host.
check_code() { bed check "$1" | tail -n 1; }
answers() { [[ $(check_code "$1") == "$2" ]]; }
# Rows that NODE committed itself, counted on NODE.
rows_on() { bed psql "$1" "SELECT count(*) FROM writes WHERE target = '$2'"; }
fence_files() { find "$PGSQLCHK_RUN_DIR/partition/$1/state" -name 'fence-*' 2>/dev/null; }
has_no_fence() { [[ -z $(fence_files "$1") ]]; }

# run QUORUM: one partition, promotion, writes and heal; QUORUM empty is
# the control run.
run() {
  local quorum=$1 label=${1:-off} before1 before2 on1 on2 result
  if ! bed start "$quorum" >/dev/null; then
    fail "quorum $label: the test bed starts"
    return
  fi
  expect "quorum $label: HAProxy routes writes to db1 before the cut" is_up pg1
  before1=$(rows_on db1 "$DB1")
  before2=$(rows_on db2 "$DB2")

  if [[ $quorum == all ]]; then
    bed cut
    expect "quorum all, cut without a promotion: db1 answers 503" wait_for 10 answers db1 503
    note "$(bed check db1 | head -n 1)"
    bed heal
    expect "quorum all, healed before any promotion: db1 answers 200 again" wait_for 10 answers db1 200
    expect "quorum all, healed before any promotion: no fence file (losing quorum proves nothing)" has_no_fence db1
    expect "quorum all, healed: HAProxy routes writes to db1 again" wait_for 15 is_up pg1
  fi

  bed cut
  if [[ -n $quorum ]]; then
    expect "quorum $label, cut: HAProxy takes db1 out of the ReadWrite listener" wait_for 15 is_down pg1
    note "db1: $(bed check db1 | head -n 1)"
  else
    sleep 6
    expect "quorum off, cut: db1 still answers 200 (it cannot see the other side)" answers db1 200
  fi
  bed promote db2
  case $quorum in
    all)
      sleep 4
      expect "quorum all, db2 promoted: it reaches 2 of 3 and answers 503" answers db2 503
      note "db2: $(bed check db2 | head -n 1)"
      ;;
    *)
      expect "quorum $label, db2 promoted: HAProxy sees it UP" wait_for 15 is_up pg2
      ;;
  esac
  note "HAProxy, ReadWrite: $(bed status | grep '^pg' | paste -sd ' ')"
  result=$(bed writes "$WRITE_SECONDS")
  on1=$(($(rows_on db1 "$DB1") - before1))
  on2=$(($(rows_on db2 "$DB2") - before2))
  note "quorum $label: $WRITE_SECONDS s of writes through HAProxy: $result; on db1 $on1, on db2 $on2"
  case $quorum in
    all)
      expect "quorum all, partitioned: 0 writes on db1 (and 0 on db2, which lacks db1)" test "$on1" -eq 0 -a "$on2" -eq 0
      ;;
    majority)
      expect "quorum majority, partitioned: 0 writes on db1, every one on db2" test "$on1" -eq 0 -a "$on2" -gt 0
      ;;
    *)
      expect "quorum off, partitioned: writes reach the old primary db1 (the case --quorum closes)" test "$on1" -gt 0
      ;;
  esac

  bed heal
  expect "quorum $label, healed: db1 sees db2's timeline 2 and answers 503" wait_for 10 answers db1 503
  note "db1: $(bed check db1 | head -n 1)"
  expect "quorum $label, healed: db1's fence file exists" test -n "$(fence_files db1)"
  sleep 3
  expect "quorum $label, healed: db1 stays 503, fenced" eval 'bed check db1 | head -n 1 | grep -q "stale primary (fenced)" && answers db1 503'
  expect "quorum $label, healed: HAProxy routes writes to db2" wait_for 15 is_up pg2
  expect "quorum $label, healed: HAProxy keeps db1 out" is_down pg1
  bed stop >/dev/null 2>&1
}

run all
run majority
run ""
