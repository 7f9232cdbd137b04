# make test   start the emulators, vet, staticcheck, race-enabled tests, each fuzz target for
#             FUZZTIME (default 3s), stop the emulators
# make fuzz   only the fuzz targets, each for FUZZTIME (FUZZTIME=2m for a longer search)
# make bench  run the Go benchmarks (against the emulators where a benchmark needs them)
# make demo   the whole system on this machine: its own emulators, the fault proxy, kinesis-agent
#             on a rotated log, three consumer workers, a SIGKILL, a split and a merge (under 2 min)

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
EMULATORS   := integration/emulators/run
GO_TEST_FLAGS ?=
BENCH ?= .
FUZZTIME ?= 3s

.PHONY: test bench demo vet staticcheck unit fuzz emulators-start emulators-stop

# Every step runs even when an earlier one fails; the emulators are always
# stopped; the exit status is non-zero when any step failed.
test:
	@envfile=$$(mktemp); trap '$(EMULATORS) stop; rm -f "$$envfile"' EXIT; \
	$(EMULATORS) start >"$$envfile" || exit 1; \
	set -a; . "$$envfile"; set +a; \
	cat "$$envfile"; status=0; \
	echo "== go vet"; go vet ./... || status=1; \
	echo "== staticcheck"; go run $(STATICCHECK) ./... || status=1; \
	echo "== go test -race"; go test -race -count=1 $(GO_TEST_FLAGS) ./... || status=1; \
	echo "== fuzz ($(FUZZTIME) each)"; $(MAKE) --no-print-directory fuzz || status=1; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED"; else echo "make test: ok"; fi; \
	exit $$status

bench:
	@envfile=$$(mktemp); trap '$(EMULATORS) stop; rm -f "$$envfile"' EXIT; \
	$(EMULATORS) start >"$$envfile" || exit 1; \
	set -a; . "$$envfile"; set +a; \
	go test -run '^$$' -bench '$(BENCH)' -benchmem ./...

demo:
	go run ./integration/cmd/kinesis-demo

# Every fuzz target of the module (a func FuzzX in a _test.go file), each
# run for FUZZTIME; a failing input is written to the package's
# testdata/fuzz and fails the run.
fuzz:
	@status=0; \
	for target in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v node_modules | sort | \
		xargs grep -H '^func Fuzz' | sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|'); do \
		dir=$${target%%:*}; name=$${target##*:}; \
		echo "fuzz $$dir $$name"; \
		go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) "$$dir" >/tmp/fuzz.$$$$.log 2>&1 || { cat /tmp/fuzz.$$$$.log; status=1; }; \
		rm -f /tmp/fuzz.$$$$.log; \
	done; exit $$status

vet:
	go vet ./...

staticcheck:
	go run $(STATICCHECK) ./...

# Tests without starting emulators: integration tests skip unless endpoints are set.
unit:
	go test -race -count=1 ./...
