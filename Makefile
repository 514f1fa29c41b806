# pgsqlchk: `make build`, `make test`, `make bench`. Each target installs the
# Debian packages it needs when run as root (scripts/deps.sh).

SWIFT        ?= swift
RELEASE_DIR  := .build/release
BINARY       := $(RELEASE_DIR)/pgsqlchk
VERSION      := $(shell sed -n 's/^public let pgsqlchkVersion = "\(.*\)"/\1/p' Sources/PGSQLChkCore/Version.swift)

# Start-up is on the hot path (one process per check), so the release binary
# carries the Swift runtime, libstdc++ and libgcc statically and is not PIE:
# loading libstdc++.so cost ~0.55 ms a check, libgcc_s ~0.15 ms, PIE's
# copy-on-write relocations ~0.2 ms (README, "Start-up cost"). The link
# directory holds only libstdc++.a, so -lstdc++ resolves to the archive.
LINK_DIR      := $(CURDIR)/.build-link
RELEASE_FLAGS := -c release --static-swift-stdlib \
	-Xswiftc -L$(LINK_DIR) \
	-Xswiftc -Xclang-linker -Xswiftc -static-libgcc \
	-Xswiftc -Xclang-linker -Xswiftc -no-pie

.PHONY: build test unit-test bench demo clean version

build: $(LINK_DIR)/libstdc++.a
	$(SWIFT) build $(RELEASE_FLAGS)
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

demo:
	bash scripts/demo.sh

bench: build
	bash scripts/bench.sh $(BINARY)

version:
	@echo $(VERSION)

clean:
	bash scripts/cluster.sh stop
	rm -rf .build .build-*

include mk/install.mk
