# sfork: top-level targets.  `make run` and `make test` are the two commands
# a fresh Debian 12 machine needs (see README.md); both install what is
# missing first.

VENV     := .venv
PY       := $(VENV)/bin/python
PYTEST   := $(VENV)/bin/pytest
KVER     ?= $(shell scripts/default-kver 2>/dev/null)
KDIR     ?= /lib/modules/$(KVER)/build
PREFIX   ?= /usr/local
RESULTS  := build/results
JOBS     ?= auto

export KDIR

all: build

deps:
	@scripts/deps

build:
	@$(MAKE) --no-print-directory -C kmod KDIR=$(KDIR)
	@$(MAKE) --no-print-directory -C libsfork
	@$(MAKE) --no-print-directory -C ltp-tests
	@$(MAKE) --no-print-directory -C bench
	@$(MAKE) --no-print-directory -C fuzz

lint: deps
	scripts/checkpatch
	$(MAKE) --no-print-directory -C kmod KDIR=$(KDIR) C=2 2>&1 | scripts/fail-on-sparse
	$(VENV)/bin/ruff check kguest pytests bench conftest.py
	$(VENV)/bin/mypy
	scripts/manlint

# The whole guest suite on the default kernel plus the harness's own tests.
test: deps lint build
	@mkdir -p $(RESULTS)
	$(PYTEST) -n $(JOBS) --tap-combined --tap-outdir=$(RESULTS) \
		--junitxml=$(RESULTS)/junit.xml pytests scenarios

run: deps build
	@mkdir -p $(RESULTS)
	$(PYTEST) -n $(JOBS) --junitxml=$(RESULTS)/junit.xml scenarios
	$(PY) -m bench.driver --quick
	@scripts/summary

bench: deps build
	$(PY) -m bench.driver $(if $(FULL),--full,--quick)

install: build
	$(MAKE) -C libsfork install PREFIX=$(PREFIX)
	install -d $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man4
	install -m 0644 man/sfork.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 0644 man/sfork.4 $(DESTDIR)$(PREFIX)/share/man/man4/

clean:
	-$(MAKE) -C kmod clean KDIR=$(KDIR)
	-$(MAKE) -C libsfork clean
	-$(MAKE) -C ltp-tests clean
	-$(MAKE) -C bench clean
	rm -rf build

.PHONY: all deps build lint test run bench install clean
