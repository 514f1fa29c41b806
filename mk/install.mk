# `make install`, `make uninstall`, `make deb`; included at the end of the
# Makefile (so that `build` stays the default goal), whose BINARY, VERSION and
# `build` this uses.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   binary (stripped), man page,
#       systemd units, samples; /etc/default/pgsqlchk only if absent
#   make uninstall [PREFIX=...] [DESTDIR=]        the same files; the
#       /etc/default/pgsqlchk sample only if unchanged
#   make deb                                      .build/deb/pgsqlchk_VERSION_ARCH.deb
#
# The units run $(BINDIR)/pgsqlchk; systemd also reads units from
# /usr/local/lib/systemd/system, so the default PREFIX works as it is.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/pgsqlchk
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
# systemd-tmpfiles reads /usr/local/lib/tmpfiles.d too.
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

# Samples owned by other parts of the tree; each directory ships as
# examples/<dir>/ when it exists, its paths to the binary made $(BINDIR)'s.
EXAMPLE_DIRS := $(wildcard xinetd haproxy keepalived prometheus sql)

# Deferred (=), so that only `make deb` asks dpkg and git.
DEB_ARCH     = $(shell dpkg --print-architecture)
DEB_FILE     = .build/deb/pgsqlchk_$(VERSION)_$(DEB_ARCH).deb
DEB_ROOT     = $(CURDIR)/.build/deb/root
DEB_WORK     = $(CURDIR)/.build/deb/work
DEB_CONTROL  = $(DEB_ROOT)/DEBIAN
# The changelog's date: the last commit's, so two builds of one tree match.
DEB_DATE     = $(shell git log -1 --format=%aD 2>/dev/null | grep . || date -R)

INSTALL      ?= install
INSTALL_DATA := $(INSTALL) -m 0644

.PHONY: install uninstall deb

install: build
	$(install-files)

# Installs into $(DESTDIR) with the directory variables in effect; shared by
# `install` and `deb` so that the package holds exactly what install does.
define install-files
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/default
	$(INSTALL) -m 0755 $(BINARY) $(DESTDIR)$(BINDIR)/pgsqlchk
	strip --remove-section=.comment --remove-section=.note --strip-unneeded $(DESTDIR)$(BINDIR)/pgsqlchk
	gzip -9n <man/pgsqlchk.1 >$(DESTDIR)$(MANDIR)/man1/pgsqlchk.1.gz
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/pgsqlchk.1.gz
	$(INSTALL_DATA) systemd/pgsqlchk.socket systemd/pgsqlchk-agent.socket $(DESTDIR)$(UNITDIR)/
	set -e; for unit in pgsqlchk@.service pgsqlchk-agent@.service; do \
		sed 's|^ExecStart=-/usr/bin/pgsqlchk\( --agent\)\{0,1\}$$|ExecStart=-$(BINDIR)/pgsqlchk\1|' systemd/$$unit \
			>$(DESTDIR)$(UNITDIR)/$$unit; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit; \
		grep -q '^ExecStart=-$(BINDIR)/pgsqlchk' $(DESTDIR)$(UNITDIR)/$$unit; \
	done
	$(INSTALL_DATA) systemd/pgsqlchk.tmpfiles $(DESTDIR)$(TMPFILESDIR)/pgsqlchk.conf
	$(INSTALL_DATA) README.md $(DESTDIR)$(DOCDIR)/README.md
	set -e; for dir in $(EXAMPLE_DIRS); do \
		$(INSTALL) -d $(DESTDIR)$(DOCDIR)/examples/$$dir; \
		for file in $$dir/*; do \
			sed 's|/usr/local/bin/pgsqlchk|$(BINDIR)/pgsqlchk|g' $$file \
				>$(DESTDIR)$(DOCDIR)/examples/$$file; \
			chmod 0644 $(DESTDIR)$(DOCDIR)/examples/$$file; \
		done; \
	done
	$(INSTALL_DATA) systemd/pgsqlchk.default $(DESTDIR)$(DOCDIR)/examples/pgsqlchk.default
	test -e $(DESTDIR)$(SYSCONFDIR)/default/pgsqlchk || \
		$(INSTALL_DATA) systemd/pgsqlchk.default $(DESTDIR)$(SYSCONFDIR)/default/pgsqlchk
endef

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pgsqlchk $(DESTDIR)$(MANDIR)/man1/pgsqlchk.1.gz \
		$(DESTDIR)$(UNITDIR)/pgsqlchk.socket $(DESTDIR)$(UNITDIR)/pgsqlchk@.service \
		$(DESTDIR)$(UNITDIR)/pgsqlchk-agent.socket $(DESTDIR)$(UNITDIR)/pgsqlchk-agent@.service \
		$(DESTDIR)$(TMPFILESDIR)/pgsqlchk.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	if cmp -s systemd/pgsqlchk.default $(DESTDIR)$(SYSCONFDIR)/default/pgsqlchk; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/default/pgsqlchk; \
	elif test -e $(DESTDIR)$(SYSCONFDIR)/default/pgsqlchk; then \
		echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/default/pgsqlchk (changed since install)"; \
	fi

# The package installs what `make install PREFIX=/usr` does, with the units in
# /lib/systemd/system (Debian 12 is not yet merged-/usr for units), then adds
# the control files: its Version is $(VERSION) and its Depends come from the
# binary's own libraries (dpkg-shlibdeps), so a libstdc++ or libswift that
# creeps into the link shows up there. libpq5 is named in debian/control.in
# itself: the binary loads libpq.so.5 with dlopen (Sources/CLibPQTable), which
# dpkg-shlibdeps cannot see.
deb: override PREFIX := /usr
deb: override UNITDIR := /lib/systemd/system
deb: override DESTDIR := $(DEB_ROOT)
deb: build
	test -n "$(VERSION)" && test -n "$(DEB_ARCH)"
	rm -rf $(DEB_ROOT) $(DEB_WORK) $(DEB_FILE)
	$(install-files)
	find $(DEB_ROOT) -type d -exec chmod 0755 {} +
	$(INSTALL_DATA) debian/copyright $(DEB_ROOT)$(DOCDIR)/copyright
	$(INSTALL) -d -m 0755 $(DEB_ROOT)/usr/share/lintian/overrides
	$(INSTALL_DATA) debian/lintian-overrides $(DEB_ROOT)/usr/share/lintian/overrides/pgsqlchk
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@DATE@/$(DEB_DATE)/' debian/changelog.in \
		| gzip -9n >$(DEB_ROOT)$(DOCDIR)/changelog.gz
	chmod 0644 $(DEB_ROOT)$(DOCDIR)/changelog.gz
	$(INSTALL) -d $(DEB_CONTROL) $(DEB_WORK)/debian
	$(INSTALL_DATA) debian/conffiles $(DEB_CONTROL)/conffiles
	$(INSTALL) -m 0755 debian/postinst debian/prerm debian/postrm $(DEB_CONTROL)/
	: >$(DEB_WORK)/debian/control
	cd $(DEB_WORK) && dpkg-shlibdeps -O $(DEB_ROOT)$(BINDIR)/pgsqlchk >substvars
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
		-e "s/@DEPENDS@/$$(sed -n 's/^shlibs:Depends=//p' $(DEB_WORK)/substvars)/" \
		-e "s/@INSTALLED_SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)/" \
		debian/control.in >$(DEB_CONTROL)/control
	cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
		| xargs md5sum >DEBIAN/md5sums
	chmod 0644 $(DEB_CONTROL)/md5sums
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_FILE)
	@echo "built $(DEB_FILE)"
