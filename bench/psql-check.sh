#!/usr/bin/env bash
# The check pgsqlchk replaces: the widely copied xinetd script from the
# "HAProxy + PostgreSQL + xinetd" blog posts, which runs psql per check.
#
#   psql-check.sh [-h HOST] [-p PORT] [-U USER] [-d DBNAME]
#
# Options left out fall back to psql's PGHOST, PGPORT, PGUSER, PGDATABASE.
# PGSQLCHK_PG_BIN names the directory of the real psql binary: Debian's
# /usr/bin/psql is a Perl wrapper that would add its own start-up to ours.
#
# Kept to the original's shape (psql -t -c "select pg_is_in_recovery()", then
# echo -e lines), with two fixes so that it is a fair opponent, not a straw
# man: bash's builtin echo instead of one /bin/echo process per line, and a
# correct response (CRLF line ends, Content-Length) with exit 0/1/2 like
# pgsqlchk's.
set -euo pipefail

psql_args=(-X -q -t -A)
while getopts 'h:p:U:d:' option; do
  case $option in
    h) psql_args+=(-h "$OPTARG") ;;
    p) psql_args+=(-p "$OPTARG") ;;
    U) psql_args+=(-U "$OPTARG") ;;
    d) psql_args+=(-d "$OPTARG") ;;
    *) exit 64 ;;
  esac
done

answer() {
  echo -e "HTTP/1.1 $1\r"
  echo -e "Content-Type: text/plain; charset=utf-8\r"
  echo -e "Content-Length: $((${#2} + 1))\r"
  echo -e "Connection: close\r"
  echo -e "\r"
  echo "$2"
  exit "$3"
}

value=$("${PGSQLCHK_PG_BIN:?names the directory of the real psql}/psql" "${psql_args[@]}" \
  -c "select pg_is_in_recovery()" 2>/dev/null) || value=

case $value in
  f) answer "200 OK" primary 0 ;;
  t) answer "206 Partial Content" standby 1 ;;
  *) answer "503 Service Unavailable" "DB down" 2 ;;
esac
