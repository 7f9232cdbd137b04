# make test   start the emulators, vet, staticcheck, race-enabled tests, stop the emulators
# make bench  run the Go benchmarks (against the emulators where a benchmark needs them)
# make demo   the whole system on this machine: its own emulators, the fault proxy, kinesis-agent
#             on a rotated log, three consumer workers, a SIGKILL, a split and a merge (under 2 min)

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
EMULATORS   := integration/emulators/run
GO_TEST_FLAGS ?=
BENCH ?= .

.PHONY: test bench demo vet staticcheck unit emulators-start emulators-stop

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
	if [ $$status -ne 0 ]; then echo "make test: FAILED"; else echo "make test: ok"; fi; \
	exit $$status

bench:
	@envfile=$$(mktemp); trap '$(EMULATORS) stop; rm -f "$$envfile"' EXIT; \
	$(EMULATORS) start >"$$envfile" || exit 1; \
	set -a; . "$$envfile"; set +a; \
	go test -run '^$$' -bench '$(BENCH)' -benchmem ./...

demo:
	go run ./integration/cmd/kinesis-demo

vet:
	go vet ./...

staticcheck:
	go run $(STATICCHECK) ./...

# Tests without starting emulators: integration tests skip unless endpoints are set.
unit:
	go test -race -count=1 ./...
