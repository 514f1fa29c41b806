#!/usr/bin/env bash
# Flap benchmark (issue 12, section 4): how often HAProxy moves a standby in
# and out of pg_readonly_standbys while its replication lag hovers around
# the check's limit, with `http-check send-state` (pgsqlchk's hysteresis:
# in rotation up to the limit, back only at or below 75% of it) and without.
#
#   scripts/flap-bench.sh BINARY        (make flap-bench)
#
# scripts/stack.sh renders the shipped haproxy/haproxy.cfg, as in the tests,
# with two changes for both runs: the standbys' HTTP check asks
# `GET /?lag=LIMIT` (the shipped one asks no limit), and their agent is
# left out (it answers `down` at its limit whatever HAProxy's view, so it
# would flap both runs alike). The run without also drops send-state.
# bench/flap.py holds the lag around the limit (its docstring says how);
# flaps are the standby's "is DOWN" lines in HAProxy's log
# (`option log-health-checks`), counted after the warm-up.
#
# Environment: FLAP_SECONDS (180) counted per run after FLAP_WARMUP (15) s;
# FLAP_LIMIT (8388608 bytes), FLAP_WRITE_RATE (4194304 bytes a second);
# FLAP_CENTER (1), FLAP_SWING (0.08) and FLAP_JITTER (0.05): the lag's
# target, as shares of the limit, is CENTER + SWING x a 30 s sine + uniform
# noise of JITTER (bench/flap.py): by default hovering at the limit; 0.9 and
# 0.25 swing it from 65% to 115% of the limit;
# FLAP_TARGET_RATIO (4): PASS when send-state cuts flaps a minute at least
# that many times, and the run without it flapped at least twice a minute
# (otherwise the lag did not test anything). The cluster and stack take the
# PGSQLCHK_* run directory and ports of scripts/common.sh: set them all to
# run beside another cluster or stack. HAProxy's logs of both runs stay in
# the temporary directory it names. A benchmark, not a test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/common.sh
. "$ROOT/scripts/common.sh"
readonly SECONDS_PER_RUN=${FLAP_SECONDS:-180} WARMUP=${FLAP_WARMUP:-15}
readonly LIMIT=${FLAP_LIMIT:-8388608} WRITE_RATE=${FLAP_WRITE_RATE:-4194304} TARGET_RATIO=${FLAP_TARGET_RATIO:-4}
readonly CENTER=${FLAP_CENTER:-1} SWING=${FLAP_SWING:-0.08} JITTER=${FLAP_JITTER:-0.05}
# The standby is 192.0.2.22 in the sample, pg2.
readonly SERVER=pg_readonly_standbys/pg2

(($# == 1)) || die "usage: scripts/flap-bench.sh BINARY"
((EUID == 0)) || die "run as root (the checks run as the pgsqlchk user)"
bash "$ROOT/scripts/deps.sh" bench cluster e2e
export PGSQLCHK_BINARY=$1

cleanup() {
  bash "$ROOT/scripts/stack.sh" stop >/dev/null 2>&1 || true
  bash "$ROOT/scripts/cluster.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

WORK=$(mktemp -d /tmp/pgsqlchk-flap-bench.XXXXXX)
readonly WORK
bash "$ROOT/scripts/cluster.sh" start >"$WORK/cluster.log" 2>&1 || die "the cluster did not start" "$WORK/cluster.log"
# shellcheck source=/dev/null
. "$RUN/env"

# The standbys' check carries the limit; no agent. Each expression must
# match the sample (stack.sh's render), so a changed sample fails loudly.
readonly LIMITED_CHECK="/^backend pg_readonly_standbys/,/^$/s|^(\s*option httpchk)$|\1 GET /?lag=$LIMIT|
s| agent-check agent-port [0-9]+ agent-inter [^ ]+ agent-send \"[^\"]*\"||"
readonly NO_SEND_STATE='s|^(\s*)http-check send-state$|\1# (no http-check send-state)|'

# Runs flap.py for WARMUP + SECONDS_PER_RUN and prints "DOWNS UPS UP% lag":
# the standby's transitions after the warm-up, the share of once-a-second
# samples of HAProxy's stats that found it UP, and flap.py's lag summary.
measure() {
  local controller before after up=0 samples=0
  python3 "$ROOT/bench/flap.py" "$PGSQLCHK_PG_BIN/psql" "$PGSQLCHK_SOCKET_DIR" "$PGSQLCHK_PRIMARY_PORT" "$PGSQLCHK_STANDBY_PORT" \
    "$LIMIT" "$WRITE_RATE" "$WARMUP" "$SECONDS_PER_RUN" "$CENTER" "$SWING" "$JITTER" >"$WORK/flap.out" &
  controller=$!
  sleep "$WARMUP"
  before=$(transitions)
  while kill -0 "$controller" 2>/dev/null; do
    samples=$((samples + 1))
    bash "$ROOT/scripts/stack.sh" servers 2>/dev/null | grep -qxF "$SERVER UP" && up=$((up + 1))
    sleep 1
  done
  wait "$controller" || die "bench/flap.py failed" "$WORK/flap.out"
  after=$(transitions)
  echo "$((${after% *} - ${before% *})) $((${after#* } - ${before#* })) $((100 * up / samples))% $(cat "$WORK/flap.out")"
}

# "DOWNS UPS" so far in HAProxy's log for the standby. The log has each
# event twice, as the log line and as a "[WARNING] (pid) :" message on
# stderr: only the log lines count.
transitions() {
  local log=$RUN/stack/haproxy.log
  echo "$(grep -c "^Server $SERVER is DOWN" "$log" || true) $(grep -c "^Server $SERVER is UP" "$log" || true)"
}

# Starts (or restarts) HAProxy with EDITS; stack.sh waits until the standby
# is UP, which it is at once: flap.py resets the delay when it ends, so the
# standby has caught up, under any rejoin threshold.
haproxy_with() {
  export PGSQLCHK_HAPROXY_EDITS=$1
  if [[ -f $RUN/stack.env ]]; then
    bash "$ROOT/scripts/stack.sh" restart-haproxy >"$WORK/stack.log" 2>&1 || die "HAProxy did not restart" "$WORK/stack.log"
  else
    bash "$ROOT/scripts/stack.sh" start >"$WORK/stack.log" 2>&1 || die "the stack did not start" "$WORK/stack.log"
  fi
}

declare -A result
for variant in without with; do
  if [[ $variant == with ]]; then haproxy_with "$LIMITED_CHECK"; else haproxy_with "$LIMITED_CHECK"$'\n'"$NO_SEND_STATE"; fi
  echo "flap-bench: $variant send-state: standby check '$(grep -oE "^\s*option httpchk GET [^ ]+" "$RUN/stack/haproxy.cfg" | tr -d '\t')'," \
    "send-state lines: $(grep -cE '^\s*http-check send-state$' "$RUN/stack/haproxy.cfg" || true)"
  result[$variant]=$(measure)
  cp "$RUN/stack/haproxy.log" "$WORK/haproxy-$variant-send-state.log"
  echo "flap-bench: $variant send-state: ${result[$variant]}"
done

read -r downs_without ups_without up_without _ <<<"${result[without]}"
read -r downs_with ups_with up_with _ <<<"${result[with]}"
per_minute() { awk -v n="$1" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.1f", n * 60 / s }'; }
echo
echo "HAProxy's logs: $WORK/haproxy-{with,without}-send-state.log"
echo "limit $LIMIT bytes, writes $WRITE_RATE bytes/s, lag target ($CENTER + $SWING sine + $JITTER noise) x limit," \
  "$SECONDS_PER_RUN s a run after $WARMUP s warm-up;" \
  "$(grep -oE 'inter [^ ]+ fastinter [^ ]+ downinter [^ ]+ fall [0-9]+ rise [0-9]+' "$RUN/stack/haproxy.cfg")"
printf '%-20s %6s %6s %10s %6s  %s\n' "" DOWN UP "flaps/min" "UP" "lag"
printf '%-20s %6s %6s %10s %6s  %s\n' "without send-state" "$downs_without" "$ups_without" "$(per_minute "$downs_without")" "$up_without" \
  "${result[without]#* * * }"
printf '%-20s %6s %6s %10s %6s  %s\n' "with send-state" "$downs_with" "$ups_with" "$(per_minute "$downs_with")" "$up_with" "${result[with]#* * * }"
if ((downs_without * 60 < 2 * SECONDS_PER_RUN)); then
  echo "MISS: without send-state the standby flapped under twice a minute: the lag did not test the hysteresis"
elif ((downs_with * TARGET_RATIO <= downs_without)); then
  echo "PASS: send-state cut flaps $( ((downs_with > 0)) && awk -v a="$downs_without" -v b="$downs_with" 'BEGIN { printf "%.1f-fold", a / b }' || echo "from $downs_without to 0") (target: ${TARGET_RATIO}-fold)"
else
  echo "MISS: send-state cut flaps only from $downs_without to $downs_with (target: ${TARGET_RATIO}-fold)"
fi
