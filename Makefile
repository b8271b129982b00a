# vdeliver: `make demo` delivers the example messages; `make test` runs everything.
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/vdeliver
PREFIX    ?= /usr/local
FUZZTIME  ?= 10s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Where the suites of `make test` record their results for the closing summary.
TESTLOG   ?= bin/testlog
TESTSUM   := bin/testsum

# A test suite piped into the recorder must fail when go test fails.
SHELL       := bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all build deps test test-suites summary unit tables-1m bench-bdb lint vet fmt-check tidy-check fuzz e2e demo install install-setuid attacks faults faults-short man bench bench-cdb bench-lmtp bench-go clean

all: build

# Reproducible: no local paths in the binary, commit time as the build time. The tag drops
# urfave/cli's documentation renderer, whose init costs every delivery ~3 ms (docs/ uses it);
# a static build without cgo starts ~3 ms faster still.
build:
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) \
		CGO_ENABLED=0 $(GO) build -trimpath -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o $(BIN) .

# Debian packages the tests drive for real (Postfix, lockers, Python's mailbox reader).
deps:
	bash testdata/deps.sh

# The full suite, as CI runs it, ending with one line of what ran: suites, tests, skips.
test:
	@rm -rf $(TESTLOG)
	@$(MAKE) --no-print-directory test-suites
	@$(MAKE) --no-print-directory summary

test-suites: deps fmt-check vet lint tidy-check unit tables-1m fuzz e2e

summary: $(TESTSUM)
	@$(TESTSUM) summary $(TESTLOG)

$(TESTSUM): internal/testsum/main.go
	$(GO) build -o $@ ./internal/testsum

# Every package but e2e, whose tests need the Postfix that `make e2e` sets up.
unit: $(TESTSUM)
	$(GO) test -json -race -shuffle=on -count=1 $$($(GO) list ./... | grep -v '/e2e$$') | $(TESTSUM) record $(TESTLOG) unit
	# Once more on os.Root, the confinement used where openat2 is missing; the two tests of
	# openat2 itself have nothing to test there.
	$(GO) test -json -count=1 -tags beneath_osroot -skip '^(TestSwapRace|TestScripts)$$/^(openat2|confine_openat2)$$' \
		./internal/beneath ./maildir ./mbox ./internal/cli | $(TESTSUM) record $(TESTLOG) unit-osroot

# hash:, btree: and lmdb: tables of 1,000,000 generated entries, built by Postfix's postmap,
# answer as postmap -s and postmap -q do (the 10- and 10,000-entry ones run in unit). About
# two minutes on an idle 2-core machine, most of it postmap building the tables.
tables-1m: $(TESTSUM)
	VDELIVER_BDB_1M=1 VDELIVER_LMDB_MILLION=1 $(GO) test -json -count=1 -timeout 30m \
		-run '^(TestDBAgainstPostmap|TestLMDBMatchesPostmap)$$' ./lookup | $(TESTSUM) record $(TESTLOG) tables-1m

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

fmt-check:
	@out=$$(gofmt -l . | grep -v '^testdata/' || true); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

tidy-check:
	@cp go.mod /tmp/vdeliver-go.mod.bak; cp go.sum /tmp/vdeliver-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then \
		git diff -- go.mod go.sum; cp /tmp/vdeliver-go.mod.bak go.mod; cp /tmp/vdeliver-go.sum.bak go.sum; \
		echo "go mod tidy changes go.mod/go.sum"; exit 1; fi

# A short smoke run of every fuzz target; the script explains its one retry.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) TESTLOG=$(TESTLOG) bash testdata/fuzz.sh

# End to end through a real Postfix from Debian (root only: it installs and starts Postfix).
e2e: $(TESTSUM)
	TESTLOG=$(TESTLOG) bash e2e/run.sh

# The full fault matrix; every count but runs must be 0 (root for tmpfs; ~5 min).
# The short matrix runs inside `make unit`; `cd faults` makes go test print the table.
faults:
	cd faults && VDELIVER_FAULTS=full $(GO) test -count=1 -timeout 60m

faults-short:
	cd faults && $(GO) test -count=1 -timeout 10m

# The attack table: each attack, expected status, got, files touched outside (0).
attacks:
	bash testdata/attacks.sh

# Setuid-root install (README "Running setuid-root"): root and the MTA's delivery group only.
VDELIVER_GROUP ?= vmail
install-setuid: build
	install -D -o root -g $(VDELIVER_GROUP) -m 4750 $(BIN) $(DESTDIR)$(PREFIX)/bin/vdeliver

demo: build
	bash testdata/demo.sh $(BIN)

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/vdeliver
	install -D -m 0644 docs/vdeliver.8 $(DESTDIR)$(PREFIX)/share/man/man8/vdeliver.8

# Regenerate docs/vdeliver.8 from the command's own flags (a test fails when it is stale).
man:
	VDELIVER_UPDATE_MAN=1 $(GO) test -count=1 -run '^TestManPage$$' ./internal/cli

# A 1,000,000-entry cdb built and queried by vdeliver and by Postfix's postmap.
# A delivery through a 1,000,000-entry hash: table against one through a 10-entry table.
bench-bdb:
	bash bench/bdb.sh

bench-cdb:
	bash bench/cdb.sh

# vdeliver against dovecot-lda, maildrop and procmail (installs them as root).
bench:
	bash bench/mda/run.sh

# Throughput through the system's real Postfix: virtual(8), vdeliver through pipe(8) and
# LMTP, Dovecot's LMTP server and a do-nothing LMTP floor (root only: it installs,
# configures and starts Postfix and Dovecot; ~30 min on a busy 2-CPU machine).
bench-lmtp:
	bash bench/postfix/run.sh

# The per-package Go benchmarks, compared with the previous run by benchstat.
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
bench-go:
	@mkdir -p bin/bench; [ ! -f bin/bench/new.txt ] || mv bin/bench/new.txt bin/bench/old.txt
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... > bin/bench/new.txt || { cat bin/bench/new.txt; exit 1; }
	@cat bin/bench/new.txt
	@if [ -f bin/bench/old.txt ]; then $(GO) run $(BENCHSTAT) bin/bench/old.txt bin/bench/new.txt; else $(GO) run $(BENCHSTAT) bin/bench/new.txt; fi

clean:
	rm -rf bin
