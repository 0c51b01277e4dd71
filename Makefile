# Every command a user runs. `make demo` and `make test` set up everything they need first (scripts/setup).
SWIFT       ?= swift
PYTHON      ?= python3
DEMO_PORT   ?= 7450
DEMO_ARGS   ?=
BENCH_ARGS  ?=
API_BENCH_ARGS ?=
AGENTS_BENCH_ARGS ?=
LIVE_BENCH_ARGS ?=
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all setup build release demo test test-python package package-test container-test console-screenshots soak power-cut bench fuzz lint format clean help

all: build

help:
	@echo "make demo   set up, build, and run the people counter on the sample video (live view on :$(DEMO_PORT))"
	@echo "make test   set up, build, and run every test (Python SDK, unit and end-to-end)"
	@echo "make package  build the release .deb and .tar.gz into .build/package (see docs/install.md)"
	@echo "make container-test  build the server and agent images from the .deb and run them with podman (not in make test; skipped without podman)"
	@echo "make console-screenshots  the console's browser tests, saving docs/console/*.png (docs/console.md)"
	@echo "make soak   the reliability tests' long, randomized forms (SOAK_SECONDS each, default 300) and their table (docs/reliability.md)"
	@echo "make power-cut  only the power-cut harness, POWER_CUT_ARGS (default --runs 200) (docs/reliability.md)"
	@echo "make bench  build for release; print the runtime's throughput/latency table, the API load table, the simulated agents table and the live relay's cost"
	@echo "make fuzz   fuzz the app protocol, manifest, overrides and outputs parsers with libFuzzer, FUZZ_SECONDS (60) each"
	@echo "make lint   check formatting (swift format)"
	@echo "scripts/postgres start|stop   the PostgreSQL 15 server the control plane tests use (make test starts it)"

setup:
	@scripts/setup

build: setup
	$(SWIFT) build --product vantage
	$(SWIFT) build --product people-counter

release: setup
	$(SWIFT) build -c release --product vantage
	$(SWIFT) build -c release --product people-counter
	$(SWIFT) build -c release --product agent-load

demo: build
	@echo
	@echo "Vantage demo: the people counter on .deps/media/vtest.mp4, looping in real time."
	@echo "Open http://127.0.0.1:$(DEMO_PORT)/ to watch the live view; events print below as JSON lines. Ctrl-C stops."
	@echo
	.build/debug/vantage run examples/people-counter --camera camera_node=.deps/media/vtest.mp4 --loop \
		--http 127.0.0.1:$(DEMO_PORT) $(DEMO_ARGS)

test: build
	$(SWIFT) build --build-tests
	PYTHONPATH=.deps/python $(PYTHON) -m pytest -q -p no:cacheprovider python/tests
	scripts/package-test
	@scripts/postgres start >/dev/null
	VANTAGE_TEST_POSTGRES_URL=$$(scripts/postgres url) $(SWIFT) test --skip-build --no-parallel

# The release package: vantage_VERSION_ARCH.deb and .tar.gz in .build/package (scripts/package, docs/install.md).
package: setup
	scripts/package

# Only the package's test (make test runs it too): the debug build packaged, installed in a fresh Debian 12 root.
package-test: build
	scripts/package-test

# The container images (packaging/container) built from the debug package and run with podman and podman-compose,
# server with PostgreSQL and the agent image (docs/install.md, "Containers"). Not part of make test: podman is not
# installed by scripts/setup; the script says SKIPPED where it cannot run.
container-test: build
	scripts/container-test

# The reliability tests' long forms (docs/reliability.md): power cuts, full disk, flapping links, camera outages…
# docs/console.md's screenshots: the console's browser tests (suites named Console*) save each page at 1440 px and
# 375 px into docs/console while they drive it, so the pictures show what the tests saw.
console-screenshots: build
	$(SWIFT) build --build-tests
	@scripts/postgres start >/dev/null
	VANTAGE_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console VANTAGE_TEST_POSTGRES_URL=$$(scripts/postgres url) \
		$(SWIFT) test --skip-build --no-parallel --filter 'Console'

soak: build
	$(SWIFT) build --build-tests
	SOAK_SECONDS=$(or $(SOAK_SECONDS),300) scripts/soak

# Only the power-cut harness (scripts/power-cut; needs root and /dev/fuse).
power-cut: build
	$(SWIFT) build --build-tests
	scripts/power-cut $(or $(POWER_CUT_ARGS),--runs 200)

test-python: setup
	PYTHONPATH=.deps/python $(PYTHON) -m pytest -q -p no:cacheprovider python/tests

bench: release
	@scripts/setup --bench
	bench/run $(BENCH_ARGS)
	@scripts/postgres start >/dev/null
	VANTAGE_TEST_POSTGRES_URL=$$(scripts/postgres url) bench/api $(API_BENCH_ARGS)
	VANTAGE_TEST_POSTGRES_URL=$$(scripts/postgres url) bench/agents $(AGENTS_BENCH_ARGS)
	bench/live $(LIVE_BENCH_ARGS)
	bench/cameras $(CAMERAS_BENCH_ARGS)

# libFuzzer build in .build/fuzz (the normal build is untouched); see docs/fuzzing.md. FUZZ_TARGETS and FUZZ_ARGS too.
fuzz: setup
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) SWIFT=$(SWIFT) fuzz/run

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests examples Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests examples Package.swift

clean:
	rm -rf .build
