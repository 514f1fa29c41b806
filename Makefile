# pgsqlchk: `make build`, `make test`, `make bench`. Each target installs the
# Debian packages it needs when run as root (scripts/deps.sh).

SWIFT        ?= swift
RELEASE_DIR  := .build/release
BINARY       := $(RELEASE_DIR)/pgsqlchk
VERSION      := $(shell sed -n 's/^public let pgsqlchkVersion = "\(.*\)"/\1/p' Sources/PGSQLChkCore/Version.swift)

# Start-up is on the hot path (one process per check): static Swift runtime,
# no Foundation; see README "Start-up cost" for what each flag buys.
RELEASE_FLAGS := -c release --static-swift-stdlib

.PHONY: build test unit-test bench clean version

build:
	bash scripts/deps.sh build
	$(SWIFT) build $(RELEASE_FLAGS)
	@echo "built $(BINARY) ($(VERSION))"

test:
	bash scripts/test.sh

unit-test:
	bash scripts/deps.sh build
	$(SWIFT) test --filter PGSQLChkCoreTests

bench: build
	bash scripts/bench.sh $(BINARY)

version:
	@echo $(VERSION)

clean:
	bash scripts/cluster.sh stop
	rm -rf .build .build-*
