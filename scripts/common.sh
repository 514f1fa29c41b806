# Sourced by the scripts that run the test servers (cluster.sh, stack.sh).

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
