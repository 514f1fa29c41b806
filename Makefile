# pgsqlchk: `make build`, `make test`, `make bench`. Each target installs the
# Debian packages it needs when run as root (scripts/deps.sh).

SWIFT        ?= swift
RELEASE_DIR  := .build/release
BINARY       := $(RELEASE_DIR)/pgsqlchk
VERSION      := $(shell sed -n 's/^public let pgsqlchkVersion = "\(.*\)"/\1/p' Sources/PGSQLChkCore/CommandLine/Version.swift)

# Start-up is on the hot path (one process per check), so the release binary
# carries the Swift runtime, libstdc++ and libgcc statically, is not PIE, and
# does not load libm (README, "Start-up cost", has the measurements):
# - LINK_DIR/libstdc++.a: -lstdc++ resolves to the archive (libstdc++.so cost
#   ~0.55 ms a check; libgcc_s ~0.15 ms; PIE's relocations ~0.2 ms);
# - LINK_DIR/libm.so: a linker script that links libm only AS_NEEDED, and the
#   LazyLibm target defines every libm function the runtime references, so
#   libm.so.6 is dropped (it cost 600,000 instructions of symbol lookups);
# - libpq is not linked at all: PostgresConnection loads it with dlopen on
#   the first probe (Sources/CLibPQTable), so a cached answer never maps it
#   or its 23 libraries; Package.swift reads its headers without pkg-config;
# - --disable-local-rpath: no RUNPATH $ORIGIN, which made the loader look for
#   each of libpq's 24 libraries in the binary's directory first (31 failed
#   lookups a check instead of 11).
# Nothing links the concurrency runtime or libdispatch: main.swift's closure
# is @Sendable, since a main-actor closure checks its executor, which pulled
# both in and ran their initialisers at every start (ReleaseBinaryTests).
LINK_DIR      := $(CURDIR)/.build-link
LINK_FILES    := $(LINK_DIR)/libstdc++.a $(LINK_DIR)/libm.so
RELEASE_FLAGS := -c release --static-swift-stdlib --disable-local-rpath \
	-Xswiftc -L$(LINK_DIR) \
	-Xswiftc -Xclang-linker -Xswiftc -static-libgcc \
	-Xswiftc -Xclang-linker -Xswiftc -no-pie

.PHONY: build test unit-test bench bench-load flap-bench demo clean version

# --product: what ships, not the tests' response-check (Package.swift).
build: $(LINK_FILES)
	$(SWIFT) build $(RELEASE_FLAGS) --product pgsqlchk
	@echo "built $(BINARY) ($(VERSION))"

test:
	bash scripts/test.sh

unit-test:
	bash scripts/deps.sh build
	$(SWIFT) test --filter PGSQLChkCoreTests

$(LINK_DIR)/libstdc++.a:
	bash scripts/deps.sh build
	mkdir -p $(LINK_DIR)
	ln -sf "$$(gcc -print-file-name=libstdc++.a)" $@

$(LINK_DIR)/libm.so:
	mkdir -p $(LINK_DIR)
	echo "INPUT ( AS_NEEDED ( $$(gcc -print-file-name=libm.so.6) ) )" >$@

demo:
	bash scripts/demo.sh

bench: build
	bash scripts/bench.sh $(BINARY)

# Checks a second through the real xinetd and systemd-socket-activate, with
# and without the result cache, against the C floor (scripts/bench-load.sh).
bench-load: build
	bash scripts/bench-load.sh $(BINARY)

# Standby flaps a minute with lag hovering at the check's limit, with and
# without HAProxy's http-check send-state (scripts/flap-bench.sh).
flap-bench: build
	bash scripts/flap-bench.sh $(BINARY)

version:
	@echo $(VERSION)

clean:
	bash scripts/cluster.sh stop
	rm -rf .build .build-*

include mk/install.mk
