#!/usr/bin/env bash
# Tests the Debian package and `make install`, as root on a scratch machine:
# - `make install DESTDIR=...` then `make uninstall` leave no file behind;
# - `make deb`, lintian (overrides in debian/lintian-overrides);
# - `dpkg -i`, then the installed binary with the Swift toolchain out of reach
#   against the test cluster (primary 200, standby 206, nothing there 503),
#   its --version against the package's Version, ldd, man page, units;
# - what postinst sets up for the samples: the system user pgsqlchk (made,
#   or an existing one reused), /etc/pgsqlchk, /var/lib/pgsqlchk and
#   /run/pgsqlchk as the check needs them, tmpfiles.d, the examples;
# - `dpkg -r` keeps the conffile, `dpkg -P` leaves the file system as it was
#   but for the system user, which Debian's policy keeps.
#
# Needs the test cluster running and its env sourced (scripts/cluster.sh
# start; . $PGSQLCHK_RUN_DIR/env): PGSQLCHK_SOCKET_DIR, PGSQLCHK_*_PORT.
# Refuses to run when a pgsqlchk package is already installed, or the
# directories it makes exist: they would be purged.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

readonly PACKAGE=pgsqlchk
readonly INSTALLED=/usr/bin/pgsqlchk
readonly CONFFILE=/etc/default/pgsqlchk
# Where a package can leave files; file_list skips /var/lib/dpkg and
# /var/lib/apt, the package managers' own records, and the backups adduser
# leaves of the user database (the user itself stays on purge).
readonly WATCHED_DIRS=(/etc /usr /lib /var/lib)
readonly USER_DATABASE_BACKUPS='^/etc/(passwd|group|shadow|gshadow)-$'
readonly CHECK_USER=pgsqlchk

# Runs a command, showing its output only when it fails.
quietly() {
  "$@" >"$WORK/command.log" 2>&1 || { sed 's/^/     /' "$WORK/command.log"; return 1; }
}

# True when TEXT has no line matching the extended regexp.
lacks() { ! grep -Eq -- "$1" <<<"$2"; }

# True when the command succeeds and prints nothing, not even a warning.
silent() {
  local output
  output=$("$@" 2>&1) && [[ -z $output ]]
}

# What man says, the page itself aside: nothing, or groff's warnings.
man_warnings() { { LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings pgsqlchk >/dev/null; } 2>&1; }

is_stripped() { lacks '[.]symtab' "$(readelf -S "$1")"; }

package_state() {
  dpkg-query -W -f='${db:Status-Abbrev}' "$PACKAGE" 2>/dev/null | tr -d ' ' || true
}

require_tools() {
  ((EUID == 0)) || die "run as root (dpkg -i)"
  bash scripts/deps.sh build package monitoring
  : "${PGSQLCHK_SOCKET_DIR:?source the cluster env first (scripts/cluster.sh start)}"
  : "${PGSQLCHK_PRIMARY_PORT:?}" "${PGSQLCHK_STANDBY_PORT:?}"
  case "$(package_state)" in
    "" | un | pn) ;;
    *) die "package $PACKAGE is installed ($(package_state)); purge it first" ;;
  esac
  local directory
  for directory in /etc/pgsqlchk /var/lib/pgsqlchk /run/pgsqlchk; do
    [[ ! -e $directory ]] || die "$directory exists: the package's purge would remove it; move it away first"
  done
}

WORK=$(mktemp -d /tmp/pgsqlchk-package.XXXXXX)
readonly WORK
cleanup() {
  case "$(package_state)" in
    "" | un | pn) ;;
    *) dpkg --purge "$PACKAGE" >/dev/null 2>&1 || true ;;
  esac
  rm -rf "$WORK"
}
trap cleanup EXIT

file_list() {
  find "${WATCHED_DIRS[@]}" -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt \) -prune -o -print 2>/dev/null |
    grep -Ev "$USER_DATABASE_BACKUPS" | LC_ALL=C sort
}

test_make_install() {
  local root=$WORK/destdir left
  make --no-print-directory install DESTDIR="$root" >"$WORK/install.log" 2>&1 ||
    { fail "make install DESTDIR=..."; tail -n 20 "$WORK/install.log"; return; }
  expect "make install: binary, man page, units, sample in /etc" test -x "$root/usr/local/bin/pgsqlchk" \
    -a -f "$root/usr/local/share/man/man1/pgsqlchk.1.gz" -a -f "$root/usr/local/lib/systemd/system/pgsqlchk.socket" \
    -a -f "$root/etc/default/pgsqlchk"
  expect "make install: the service runs the installed binary" \
    grep -qx "ExecStart=-/usr/local/bin/pgsqlchk" "$root/usr/local/lib/systemd/system/pgsqlchk@.service"
  expect "make install: the agent's service runs the installed binary with --agent" \
    grep -qx "ExecStart=-/usr/local/bin/pgsqlchk --agent" "$root/usr/local/lib/systemd/system/pgsqlchk-agent@.service"
  expect "make install: the binary is stripped" is_stripped "$root/usr/local/bin/pgsqlchk"
  make --no-print-directory uninstall DESTDIR="$root" >>"$WORK/install.log" 2>&1 || fail "make uninstall"
  left=$(find "$root" -not -type d)
  if [[ -z $left ]]; then pass "make uninstall: no file left"; else fail "make uninstall left: $left"; fi
}

build_deb() {
  make --no-print-directory deb >"$WORK/deb.log" 2>&1 || { tail -n 30 "$WORK/deb.log"; return 1; }
  DEB=$(sed -n 's/^built \(.*\.deb\)$/\1/p' "$WORK/deb.log")
  [[ -f $DEB ]]
}

test_lintian() {
  local output
  # --fail-on none: the tags are the verdict; lintian warns about root itself.
  output=$(lintian --fail-on none "$DEB" 2>&1 | grep -v 'running with root privileges' || true)
  if [[ -z $output ]]; then pass "lintian: no errors or warnings"; else fail "lintian:"; printf '     %s\n' "$output"; fi
}

# The Swift toolchain, which the installed binary must not need.
find_toolchain() {
  TOOLCHAIN=/opt/swift
  if command -v swift >/dev/null; then
    TOOLCHAIN=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
  fi
  # Where the kernel allows it, runs see an empty directory there (a private
  # mount namespace with a tmpfs over it), not just a clean environment.
  # shellcheck disable=SC2016 # expanded by that sh
  HIDE_TOOLCHAIN=(unshare --mount --propagation private -- sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$TOOLCHAIN")
  if [[ ! -d $TOOLCHAIN ]] || ! "${HIDE_TOOLCHAIN[@]}" true 2>/dev/null; then
    HIDE_TOOLCHAIN=()
  fi
}

# Runs the installed binary as the super-server would, with nothing of the
# toolchain around: a clean environment, an unprivileged user, the toolchain
# hidden.
run_installed() {
  "${HIDE_TOOLCHAIN[@]}" runuser -u nobody -- env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH= \
    "$INSTALLED" -h "$PGSQLCHK_SOCKET_DIR" -U pgsqlchk -d postgres -t 2 "$@" </dev/null
}

expect_check() {
  local name=$1 status=$2 line=$3 port=$4 output code=0
  output=$(run_installed -p "$port") || code=$?
  if [[ $code == "$status" && $(head -n 1 <<<"$output") == "$line"$'\r' ]]; then
    pass "$name"
  else
    fail "$name: exit $code, $(head -n 1 <<<"$output")"
  fi
}

test_installed() {
  local version ldd_output
  expect "dpkg -i" quietly dpkg -i "$DEB"
  expect "package installed" is_installed "$PACKAGE"
  if ((${#HIDE_TOOLCHAIN[@]})); then
    pass "the installed binary runs below with $TOOLCHAIN hidden (empty tmpfs)"
  else
    echo "note: cannot hide $TOOLCHAIN here (no mount namespace); runs use env -i only"
  fi

  version=$(dpkg-query -W -f='${Version}' "$PACKAGE")
  expect "package Version $version is make version ($(make --no-print-directory version))" \
    test "$version" = "$(make --no-print-directory version)"
  expect "pgsqlchk --version reports $version" \
    test "$("${HIDE_TOOLCHAIN[@]}" env -i PATH=/usr/bin:/bin "$INSTALLED" --version)" = "pgsqlchk $version"

  # libpq is loaded with dlopen, so only the control file can name it.
  expect "Depends names libpq5 (loaded with dlopen, invisible to dpkg-shlibdeps)" \
    bash -c "dpkg-query -W -f='\${Depends}' $PACKAGE | grep -Eq '(^|, )libpq5(,| |$)'"
  ldd_output=$(ldd "$INSTALLED")
  expect "ldd: every library found" lacks "not found" "$ldd_output"
  expect "ldd: no libswift, nothing from the toolchain ($TOOLCHAIN)" \
    lacks "libswift|libFoundation|/opt/swift|${TOOLCHAIN//./[.]}" "$ldd_output"
  expect "ldd: no libstdc++ (Depends has no C++ runtime)" lacks "libstdc[+][+]" "$ldd_output"

  expect_check "installed binary, primary: exit 0, 200" 0 "HTTP/1.1 200 OK" "$PGSQLCHK_PRIMARY_PORT"
  expect_check "installed binary, standby: exit 1, 206" 1 "HTTP/1.1 206 Partial Content" "$PGSQLCHK_STANDBY_PORT"
  expect_check "installed binary, no server: exit 2, 503" 2 "HTTP/1.1 503 no response from server" 1

  expect "man page installed and found by man" test "$(man -w pgsqlchk)" = /usr/share/man/man1/pgsqlchk.1.gz
  expect "man page renders without warnings" silent man_warnings
  expect "installed units verify (binary and man page in place)" \
    silent systemd-analyze verify /lib/systemd/system/pgsqlchk.socket /lib/systemd/system/pgsqlchk@.service \
    /lib/systemd/system/pgsqlchk-agent.socket /lib/systemd/system/pgsqlchk-agent@.service
  expect "$CONFFILE is a conffile" bash -c "dpkg-query -W -f='\${Conffiles}' $PACKAGE | grep -q ' $CONFFILE '"
}

# owner_mode PATH: "user:group mode" of PATH itself (not a link's target).
owner_mode() { stat -c '%U:%G %a' "$1"; }

# The check as the package's user, with the result cache on: it must find
# /run/pgsqlchk usable (no "result cache off" diagnostic) and leave its entry.
cache_works_as_check_user() {
  local diagnostics
  diagnostics=$("${HIDE_TOOLCHAIN[@]}" runuser -u "$CHECK_USER" -- env -i PATH=/usr/bin:/bin "$INSTALLED" \
    -h "$PGSQLCHK_SOCKET_DIR" -p "$PGSQLCHK_PRIMARY_PORT" -U pgsqlchk -d postgres --cache-ttl 1s -o none 2>&1 </dev/null) || true
  lacks "result cache off|cannot open" "$diagnostics" && [[ -n $(find /run/pgsqlchk -name '*.entry') ]] ||
    { echo "     $diagnostics"; return 1; }
}

test_setup() {
  local user_before=$1 uid_before
  if [[ -n $user_before ]]; then
    expect "postinst reused the existing user $CHECK_USER as it was" test "$(getent passwd "$CHECK_USER")" = "$user_before"
  else
    expect "postinst made the system user $CHECK_USER: system UID, no login, no home" bash -c \
      "IFS=: read -r _ _ uid _ _ home shell < <(getent passwd $CHECK_USER) && ((uid < 1000)) && [[ \$shell == */nologin && ! -e \$home ]]"
  fi
  expect "/etc/pgsqlchk: root's, 0755" test "$(owner_mode /etc/pgsqlchk)" = "root:root 755"
  expect "the drain step of the README works: touch /etc/pgsqlchk/maintenance" \
    bash -c "touch /etc/pgsqlchk/maintenance && rm /etc/pgsqlchk/maintenance"
  expect "/var/lib/pgsqlchk: the user's, 0700" test "$(owner_mode /var/lib/pgsqlchk)" = "$CHECK_USER:$(id -gn "$CHECK_USER") 700"
  expect "/run/pgsqlchk made at installation: the user's, 0700" \
    test "$(owner_mode /run/pgsqlchk)" = "$CHECK_USER:$(id -gn "$CHECK_USER") 700"
  expect "tmpfiles.d makes /run/pgsqlchk at boot" grep -qx 'd /run/pgsqlchk 0700 pgsqlchk pgsqlchk -' /usr/lib/tmpfiles.d/pgsqlchk.conf
  expect "the result cache works as $CHECK_USER with the package's defaults" cache_works_as_check_user
  expect "examples: the agent's xinetd service and keepalived's sample" test \
    -f /usr/share/doc/pgsqlchk/examples/xinetd/pgsqlchk-agent -a -f /usr/share/doc/pgsqlchk/examples/keepalived/keepalived.conf
  expect "examples: Prometheus's rules pass their own tests where they are installed" \
    bash -c "cd /usr/share/doc/pgsqlchk/examples/prometheus && promtool test rules pgsqlchk.rules.test.yml >/dev/null"
  uid_before=$(id -u "$CHECK_USER")
  expect "dpkg -i again (an upgrade)" quietly dpkg -i "$DEB"
  expect "the upgrade kept the user's UID and the directories" bash -c \
    "test \"\$(id -u $CHECK_USER)\" = $uid_before && test -d /var/lib/pgsqlchk -a -d /run/pgsqlchk"
}

test_remove_purge() {
  expect "dpkg -r" quietly dpkg -r "$PACKAGE"
  expect "after dpkg -r: binary gone, conffile kept" test ! -e "$INSTALLED" -a -f "$CONFFILE"
  expect "dpkg -P" quietly dpkg -P "$PACKAGE"
  expect "after dpkg -P: dpkg knows no $PACKAGE" test -z "$(package_state)"
  expect "after dpkg -P: /var/lib/pgsqlchk and /run/pgsqlchk removed, /etc/pgsqlchk removed empty" \
    test ! -e /var/lib/pgsqlchk -a ! -e /run/pgsqlchk -a ! -e /etc/pgsqlchk
  expect "after dpkg -P: the system user stays (Debian policy)" id "$CHECK_USER"
  file_list >"$WORK/after"
  if diff "$WORK/before" "$WORK/after" >"$WORK/diff"; then
    pass "after dpkg -P: file system as before dpkg -i"
  else
    fail "after dpkg -P, files differ (< before, > after):"
    sed 's/^/     /' "$WORK/diff" | head -n 20
  fi
}

main() {
  require_tools
  find_toolchain
  test_make_install
  if build_deb; then
    pass "make deb: $DEB"
    test_lintian
    file_list >"$WORK/before"
    local user_before
    user_before=$(getent passwd "$CHECK_USER" || true)
    test_installed
    test_setup "$user_before"
    test_remove_purge
  else
    fail "make deb"
  fi
  finish_tests
}

main "$@"
