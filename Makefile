# sfork: top-level targets.  `make run` and `make test` are the two commands
# a fresh Debian 12 machine needs (see README.md); both install what is
# missing first (scripts/deps: apt packages, the .venv).

VENV     := .venv
PY       := $(VENV)/bin/python
PYTEST   := $(VENV)/bin/pytest
KVER     ?= $(shell scripts/default-kver 2>/dev/null)
KDIR     ?= /lib/modules/$(KVER)/build
PREFIX   ?= /usr/local
RESULTS  := build/results
JOBS     ?= auto
# The suite's report: TAP (pytest-tap, one combined file) and JUnit XML.
REPORTS   = --tap-combined --tap-outdir=$(RESULTS) --junitxml=$(RESULTS)/junit.xml

export KDIR

all: build

deps:
	@scripts/deps

build:
	@$(MAKE) --no-print-directory -C kmod KDIR=$(KDIR)
	@$(MAKE) --no-print-directory -C libsfork
	@$(MAKE) --no-print-directory -C ltp-tests
	@$(MAKE) --no-print-directory -C libsfork/tests
	@$(MAKE) --no-print-directory -C bench
	@$(MAKE) --no-print-directory -C fuzz

lint: deps
	scripts/checkpatch
	$(MAKE) --no-print-directory -C kmod KDIR=$(KDIR) C=2 2>&1 | scripts/fail-on-sparse
	$(VENV)/bin/ruff check python pytests bench conftest.py
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict bench/*.py
	$(MAKE) --no-print-directory -C kguest lint PYTHON=$(CURDIR)/$(PY)
	scripts/manlint

# Everything CI runs: lint, build; then, made beside each other before any
# guest starts, the package check's fresh Debian system (scripts/deb-testroot)
# and the 6.12 and check kernels (`kguest kernel`: trixie's 6.12 fetched, the
# check kernel built from source; cached outside the checkout).  Then sfork's
# guest suite (scenarios/, with the short fuzz and stress) on the default
# 6.1 and on 6.12 (all but alloc=auto), and sfork's pytests/ (the binding,
# kirk, packaging, the broken-module check, the benchmark smoke run); then
# the check kernel's share of the suite with each test checked by kmemleak,
# line and branch coverage of kmod/ (build/results/coverage/), the error-path
# sweep of the items tagged `sweep` (leaks by sfork's counters; kmemleak in
# the sweep is `make check`'s) and the KUnit cases; then kguest's own tests
# (kguest/tests: parsers, a WARN, a panic and a hang in guests of their own)
# and its acceptance check: wheel and sdist
# through twine check, installed NOT editable in a fresh venv outside the
# checkout, running kguest/examples/hello, a module of its own.  `make matrix`
# adds the RT kernel; `make check` is the check kernel's run with kmemleak in
# the sweep too, and kguest's own check-kernel tests.
test: deps lint build prepare
	@mkdir -p $(RESULTS)/check
	$(PYTEST) -n $(JOBS) --kernels=default,6.12 $(REPORTS) pytests scenarios
	$(PYTEST) -n $(JOBS) --kernels=check --kguest-coverage \
		--kguest-coverage-dir=$(RESULTS)/coverage --kguest-fault-sweep \
		--kguest-sweep-tag=sweep --kguest-sweep-no-kmemleak --tap-combined \
		--tap-outdir=$(RESULTS)/check --junitxml=$(RESULTS)/check/junit.xml \
		scenarios kmod/sfork_kunit.c
	$(MAKE) --no-print-directory -C kguest test example PYTHON=$(CURDIR)/$(PY) \
		PYTEST_ARGS="--junitxml=$(CURDIR)/$(RESULTS)/kguest-junit.xml"

# What the suite needs beyond the build, each cached outside the checkout:
# the Debian system (network and disk) is made while the kernels are fetched
# and built (CPU), not beside the guests.
prepare: deps
	@scripts/deb-testroot >/dev/null & root=$$!; \
	$(VENV)/bin/kguest kernel 6.12 >/dev/null && $(VENV)/bin/kguest kernel check >/dev/null; \
	k=$$?; wait $$root; r=$$?; test $$k = 0 && test $$r = 0

# kguest used as a module author uses it, on kguest/examples/hello.
example: deps
	$(MAKE) --no-print-directory -C kguest example PYTHON=$(CURDIR)/$(PY)

# The main job: build, boot, the default scenarios, the quick benchmark and
# a summary (plain text: the suite's counts, the answer, the targets; the
# tables are in build/bench/report.md).
run: deps build
	@mkdir -p $(RESULTS)
	$(PYTEST) -n $(JOBS) $(REPORTS) scenarios
	$(MAKE) --no-print-directory -C bench bench SUMMARY=0
	@scripts/summary $(RESULTS)/junit.xml build/bench

bench: deps build
	$(MAKE) --no-print-directory -C bench bench $(if $(FULL),FULL=1)

# A million fuzz operations under leak accounting (scenarios/fuzz.yaml).
fuzz: deps build
	$(PYTEST) -n 0 --big scenarios/fuzz.yaml -k fuzz_long

# Big sizes (1G) and the long soaks on the default kernel.
big: deps build
	$(PYTEST) -n $(JOBS) --big $(REPORTS) scenarios pytests/test_kirk.py

matrix: deps build
	$(PYTEST) -n $(JOBS) --kernels=default,rt,6.12 $(REPORTS) scenarios

# The check kernel: 6.12 built from source with KASAN, kmemleak, lockdep,
# UBSAN, gcov, fault injection and KUnit (pyproject.toml; kguest builds it on
# first use, 10-30 minutes on two cores, and caches it in ~/.cache/kguest).
# Its share of the suite (one direction, no auto, the smallest size; each
# test checked by kmemleak) with line and branch coverage of kmod/ (lcov,
# HTML, Cobertura and a summary in build/results/coverage/), the error-path
# sweep of the items tagged `sweep`, and the KUnit cases of sfork_policy.h;
# then kguest's own tests of coverage, the sweep and KUnit on that kernel.
check: deps build
	@mkdir -p $(RESULTS)
	$(VENV)/bin/kguest kernel check
	$(PYTEST) -n $(JOBS) --kernels=check --kguest-coverage \
		--kguest-coverage-dir=$(RESULTS)/coverage --kguest-fault-sweep \
		--kguest-sweep-tag=sweep $(REPORTS) scenarios kmod/sfork_kunit.c
	eval "$$($(VENV)/bin/kguest kernel check | sed 's/^\([a-z]*\) /K_\1=/')"; \
	$(MAKE) --no-print-directory -C kguest check PYTHON=$(CURDIR)/$(PY) \
		CHECK_KERNEL=$$K_vmlinuz CHECK_KDIR=$$K_kdir

install: build
	$(MAKE) -C libsfork install PREFIX=$(PREFIX)
	install -d $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man4
	install -m 0644 man/sfork.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 0644 man/sfork.4 $(DESTDIR)$(PREFIX)/share/man/man4/

# Debian packages sfork-dkms, libsfork1, libsfork-dev and the source package,
# built with debhelper and dh_dkms and checked by lintian, in build/deb/
# (OUT=DIR elsewhere); the tree stays clean (scripts/build-deb).
deb:
	scripts/build-deb

# The fresh Debian 12 system test_deb.py installs the packages on.
testroot:
	scripts/deb-testroot >/dev/null

clean:
	-$(MAKE) -C kmod clean KDIR=$(KDIR)
	-$(MAKE) -C libsfork clean
	-$(MAKE) -C libsfork/tests clean
	-$(MAKE) -C ltp-tests clean
	-$(MAKE) -C bench clean
	-$(MAKE) -C fuzz clean
	rm -rf build

.PHONY: all deps build lint test prepare example run bench fuzz big matrix check install deb testroot clean
