# Sourced by the scripts (cluster.sh, stack.sh, deps.sh, demo.sh, bench.sh,
# test.sh) and the shell test suites (Tests/system): the one copy of every
# helper they share. A helper's name means one thing everywhere.

# Where the test servers run and listen: the environment's PGSQLCHK_* value,
# else the default written here and nowhere else.
RUN=${PGSQLCHK_RUN_DIR:-/tmp/pgsqlchk-run}
PRIMARY_PORT=${PGSQLCHK_PRIMARY_PORT:-55432}
STANDBY_PORT=${PGSQLCHK_STANDBY_PORT:-55433}
STANDBY2_PORT=${PGSQLCHK_STANDBY2_PORT:-55434}
# The unrelated primary of `cluster.sh start-other` listens on the socket
# directory only, so this names a socket file, not a TCP port.
OTHER_PORT=${PGSQLCHK_OTHER_PORT:-55435}
RW_PORT=${PGSQLCHK_RW_PORT:-5000}
RO_PORT=${PGSQLCHK_RO_PORT:-5001}
STATS_PORT=${PGSQLCHK_STATS_PORT:-7000}
PRIMARY_CHECK_PORT=${PGSQLCHK_PRIMARY_CHECK_PORT:-23267}
STANDBY_CHECK_PORT=${PGSQLCHK_STANDBY_CHECK_PORT:-23268}
PRIMARY_AGENT_PORT=${PGSQLCHK_PRIMARY_AGENT_PORT:-23269}
STANDBY_AGENT_PORT=${PGSQLCHK_STANDBY_AGENT_PORT:-23270}

# die MESSAGE [LOG]: says what failed, with the tail of LOG when it has one.
die() {
  echo "${0##*/}: $1" >&2
  if [[ -n ${2:-} && -s $2 ]]; then
    echo "--- last lines of $2:" >&2
    tail -n 20 "$2" >&2
  fi
  exit 1
}

# usage FIRST LAST: prints the calling script's header lines FIRST to LAST,
# which describe its commands.
usage() {
  { echo usage:; sed -n "$1,$2p" "$0" | sed 's/^#//'; } >&2
  exit 2
}

# is_installed PACKAGE: dpkg has PACKAGE installed. A removed-but-not-purged
# package still has an entry ("deinstall ok config-files"), so the exact
# status string matters, not just the exit code.
is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# is_running PID: the process runs, and is not a zombie: a daemon that setsid
# left to PID 1 has exited (its ports closed) long before this machine's
# PID 1 reaps it.
is_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# stop_process PID: SIGTERM, then SIGKILL if it is still there after 5 s.
stop_process() {
  local pid=$1 tries=100
  kill -TERM "$pid" 2>/dev/null || true
  while is_running "$pid" && ((tries-- > 0)); do sleep 0.05; done
  if is_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
}

port_is_listening() {
  [[ -n $(ss -Htln "sport = :$1") ]]
}

# listener_pid PORT: the pid of the process listening on PORT.
listener_pid() {
  local pid
  pid=$(ss -Htlnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -n 1)
  [[ -n $pid ]] && echo "${pid#pid=}"
}

# environment_options FILE: FILE's assignments as EnvironmentFile= reads them
# (VARIABLE=value lines; comments and blanks skipped), one "-E" and one
# assignment a line, for systemd-socket-activate.
environment_options() {
  local line
  while IFS= read -r line; do
    if [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then printf '%s\n' -E "$line"; fi
  done <"$1"
}

# start_activator PORT LOG ARGUMENT...: serves 127.0.0.1:PORT as a systemd
# .socket with Accept=yes and StandardInput=socket would, spawning ARGUMENT...
# (systemd-socket-activate's -E options, then the command) with each
# connection on stdin and stdout, stderr to LOG. In its own session, so a test
# runner's signals do not reach it. Prints its pid once it listens. Its log
# names every check: "Spawned ... as PID N." and "Child N died with code C".
start_activator() {
  local port=$1 log=$2 pid deadline
  shift 2
  setsid systemd-socket-activate --inetd -a -l "127.0.0.1:$port" "$@" </dev/null >>"$log" 2>&1 &
  # setsid may fork: the process that listens is the one to stop.
  deadline=$((SECONDS + 5))
  until pid=$(listener_pid "$port"); do
    ((SECONDS < deadline)) || die "systemd-socket-activate is not listening on $port" "$log"
    sleep 0.05
  done
  echo "$pid"
}

# The test suites' tally: pass NAME and fail NAME print a line each and count;
# expect NAME COMMAND... passes when COMMAND succeeds; finish_tests prints
# the totals and fails when any test did. (Not in a pipeline or a command
# substitution: the counters must change in the suite's shell.)
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
expect() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
finish_tests() {
  echo "${0##*/}: $passed passed, $failed failed"
  ((failed == 0 && passed > 0))
}

# render SAMPLE OUTPUT EXPRESSION...: sed with a check that every expression
# matched: if the sample changes shape, rendering fails loudly instead of
# silently testing something else.
render() {
  local sample=$1 output=$2 expression
  shift 2
  cp "$sample" "$output"
  for expression in "$@"; do
    # `w /dev/stdout` prints each line the substitution matched, even when it
    # leaves the line as it was (a test port equal to the sample's).
    [[ -n $(sed -E -i "${expression}w /dev/stdout" "$output") ]] ||
      die "rendering $sample: '$expression' matched nothing"
  done
}

# live_pid PIDFILE PROGRAM: the pid in PIDFILE, if that process is still
# PROGRAM (a recycled pid must not make us signal an unrelated process).
live_pid() {
  local pidfile=$1 program=$2 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && grep -qs "$program" "/proc/$pid/cmdline" && echo "$pid"
}

# postgres_version BIN: the version BIN/postgres reports ("15.18" of
# "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"); fails if it does
# not run. Its major is ${version%%.*}.
postgres_version() {
  local output version
  output=$("$1/postgres" -V 2>/dev/null) || return 1
  read -r _ _ version _ <<<"$output"
  echo "$version"
}

# The server's binaries: PGSQLCHK_PG_BIN (scripts/pg-versions.sh prints one
# for each version make test covers), else the newest installed Debian server,
# so the script keeps working on a release whose default is not 15. With
# PGSQLCHK_PG_MAJOR set, a server of another major is refused.
find_pg_bin() {
  if [[ -n ${PGSQLCHK_PG_BIN:-} ]]; then
    PG_BIN=$PGSQLCHK_PG_BIN
    [[ -x $PG_BIN/postgres ]] || die "PGSQLCHK_PG_BIN=$PG_BIN has no postgres"
  else
    local postgres
    postgres=$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)
    [[ -x $postgres ]] || die "no PostgreSQL server found; run scripts/deps.sh cluster"
    PG_BIN=${postgres%/postgres}
  fi
  local version
  version=$(postgres_version "$PG_BIN") || die "$PG_BIN/postgres does not run"
  PG_MAJOR=${version%%.*}
  [[ $PG_MAJOR == "${PGSQLCHK_PG_MAJOR:-$PG_MAJOR}" ]] ||
    die "$PG_BIN/postgres is PostgreSQL $version, not $PGSQLCHK_PG_MAJOR (PGSQLCHK_PG_MAJOR)"
}

# wait_until SECONDS WHAT LOG COMMAND...: until COMMAND succeeds; after
# SECONDS, dies saying WHAT, with the tail of LOG.
wait_until() {
  local seconds=$1 what=$2 log=$3 deadline
  shift 3
  deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || die "after ${seconds}s: $what" "$log"
    sleep 0.1
  done
}

# ensure_system_user NAME: a system user and group NAME, no home, no shell.
ensure_system_user() {
  id "$1" >/dev/null 2>&1 ||
    useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin --user-group "$1" ||
    die "could not create the system user $1"
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# A test bed's network namespaces are named NS_PREFIX (set by the script that
# builds them: pgpair-, pgq-) plus the host's role.
ns() { echo "$NS_PREFIX$1"; }
# Runs a command on one of those hosts.
on() {
  local host=$1
  shift
  ip netns exec "$(ns "$host")" "$@"
}

# initdb and pg_ctl refuse to run as root. The cd avoids their "could not
# change directory" warning when the caller's cwd is private to root (/root).
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
