#!/usr/bin/env bash
# A clean Debian 12 machine with systemd as PID 1, in a container on this
# host, for the deployment test (Tests/system/deploy-test.sh). As root.
#
#   scripts/container.sh rootfs [PACKAGE...]  the cached root file system with PACKAGE...
#                                             installed: prints its tarball, building it
#                                             when missing (debootstrap, then apt-get)
#   scripts/container.sh boot DIR TARBALL     unpacks TARBALL into DIR and boots it
#   scripts/container.sh run DIR COMMAND...   runs COMMAND inside, as root, in a clean
#                                             environment; stdin, stdout and exit status are its
#   scripts/container.sh stop DIR             powers it off and removes DIR
#
# The container has a network of its own with only a loopback device
# (--private-network): its PostgreSQL, checks and HAProxy listen on the ports
# the README names without meeting this host's servers, and it needs no
# mirror, since the cached root file system already holds every package the
# test installs (the tarball's name is a digest of that list).
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

readonly CACHE=${PGSQLCHK_CONTAINER_CACHE:-/var/cache/pgsqlchk-test}
readonly SUITE=bookworm
# debootstrap's own list, as issue 18 gives it: systemd as PID 1 and D-Bus.
readonly BASE_PACKAGES=systemd,systemd-sysv,dbus
# How long boot and shutdown may take before we give up.
readonly BOOT_SECONDS=60
readonly STOP_SECONDS=30
# Bump when the recipe below changes what a root file system holds.
readonly RECIPE=1

# The mirror this host's apt uses, so the container is built from the same
# archive (a snapshot, where the host is pinned to one).
mirror() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
    grep -v security | head -n 1 || true)
  [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# build_rootfs TARBALL PACKAGE...: debootstrap, then PACKAGE... with apt in a
# chroot where no service starts (policy-rc.d) and postgresql-common makes no
# cluster of its own (the test makes them with pg_createcluster). apt's
# archives and lists go: the container installs only from this set.
build_rootfs() {
  local tarball=$1 root
  shift
  root=$(mktemp -d "$CACHE/build.XXXXXX")
  chmod 0755 "$root"
  # shellcheck disable=SC2064 # the paths are fixed now
  trap "umount '$root/proc' 2>/dev/null || true; rm -rf '$root'" EXIT
  echo "container.sh: building the $SUITE root file system (debootstrap, then ${*:-nothing})" >&2
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$(mirror)" >"$root.log" 2>&1 ||
    die "debootstrap failed" "$root.log"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/etc/postgresql-common"
  echo 'create_main_cluster = false' >"$root/etc/postgresql-common/createcluster.conf"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount --bind /proc "$root/proc"
  if (($#)); then
    chroot "$root" sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"' \
      sh "$@" >>"$root.log" 2>&1 || die "apt-get install $* failed" "$root.log"
  fi
  umount "$root/proc"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
  # Every boot a new machine: systemd makes an id when the file is empty.
  : >"$root/etc/machine-id"
  tar -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -f "$root.log"
}

command_rootfs() {
  bash "$(dirname "${BASH_SOURCE[0]}")/deps.sh" container
  local packages key tarball
  packages=$(printf '%s\n' "$@" | LC_ALL=C sort -u | paste -sd ' ')
  key=$(printf '%s\n' "$RECIPE" "$SUITE" "$BASE_PACKAGES" "$(mirror)" "$packages" | sha256sum | cut -c1-16)
  tarball=$CACHE/rootfs-$SUITE-$key.tar
  mkdir -p "$CACHE"
  if [[ ! -f $tarball ]]; then
    # Root file systems of older lists are 700 MB each: keep only this one.
    rm -f "$CACHE"/rootfs-*.tar
    # shellcheck disable=SC2086 # one package a word
    build_rootfs "$tarball" $packages
  fi
  echo "$tarball"
}

# nspawn_pid DIR: the systemd-nspawn that runs DIR, from its pid file.
nspawn_pid() { live_pid "$1.pid" systemd-nspawn; }

# init_pid DIR: the container's PID 1 as this host sees it (nspawn's child).
init_pid() {
  local nspawn
  nspawn=$(nspawn_pid "$1") || return 1
  pgrep -P "$nspawn" | head -n 1
}

command_boot() {
  local dir=$1 tarball=$2 nspawn deadline init
  [[ ! -e $dir ]] || die "$dir exists: stop it first (container.sh stop $dir)"
  mkdir -p "$dir"
  tar -C "$dir" -xf "$tarball"
  # The root directory itself: mktemp made it 0700, and users such as
  # messagebus must get through it.
  chmod 0755 "$dir"
  # Its own name, not this host's that debootstrap copied, and one that
  # resolves (sudo asks).
  echo pgsqlchk-test >"$dir/etc/hostname"
  echo '127.0.1.1 pgsqlchk-test' >>"$dir/etc/hosts"
  # --keep-unit --register=no: no machined and no scope of its own (this
  # host's PID 1 need not be systemd). In its own session, so a test
  # runner's signals do not reach it.
  setsid systemd-nspawn --quiet -D "$dir" --boot --register=no --keep-unit --private-network \
    </dev/null >"$dir.console" 2>&1 &
  echo $! >"$dir.pid"
  deadline=$((SECONDS + BOOT_SECONDS))
  # is-system-running --wait returns once boot is over; a boot that hangs
  # must not hang the test, so each wait is bounded.
  until init=$(init_pid "$dir") && [[ -n $init ]] &&
    [[ $(timeout 5 bash "$0" run "$dir" systemctl is-system-running --wait 2>/dev/null) =~ ^(running|degraded)$ ]]; do
    nspawn_pid "$dir" >/dev/null || die "systemd-nspawn exited while booting $dir" "$dir.console"
    ((SECONDS < deadline)) || die "the container did not boot within $BOOT_SECONDS s" "$dir.console"
    sleep 0.2
  done
}

command_run() {
  local dir=$1 init
  shift
  init=$(init_pid "$dir") || die "no container runs in $dir"
  # nsenter keeps this host's environment, which is none of the container's.
  nsenter -t "$init" -a -r -w env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

command_stop() {
  local dir=$1 nspawn deadline
  if nspawn=$(nspawn_pid "$dir"); then
    # SIGTERM makes nspawn ask the container's systemd to power off.
    kill -TERM "$nspawn" 2>/dev/null || true
    deadline=$((SECONDS + STOP_SECONDS))
    while is_running "$nspawn" && ((SECONDS < deadline)); do sleep 0.1; done
    is_running "$nspawn" && kill -KILL "$nspawn" 2>/dev/null || true
  fi
  rm -rf "$dir" "$dir.pid" "$dir.console"
}

main() {
  ((EUID == 0)) || die "run as root (debootstrap, systemd-nspawn, nsenter)"
  local command=${1:-}
  shift || true
  case "$command" in
    rootfs) command_rootfs "$@" ;;
    boot) (($# == 2)) || usage 6 13; command_boot "$@" ;;
    run) (($# >= 2)) || usage 6 13; command_run "$@" ;;
    stop) (($# == 1)) || usage 6 13; command_stop "$@" ;;
    *) usage 6 13 ;;
  esac
}

main "$@"
