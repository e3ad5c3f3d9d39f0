# onair: `make run` serves a node on SQLite under ./data (port 33000); `make test` runs the tests.
# Each target installs only what it needs: `make run` the serving dependencies, `make test` and
# `make lint` the development tools as well, `make bench` the benchmarks' peers on top.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
SERVE := $(VENV)/.installed-serve-$(SUM)
DEV := $(VENV)/.installed-dev-$(SUM)
BENCH := $(VENV)/.installed-bench-$(SUM)
WITH_BENCH := .[dev,bench]# a variable: a comma in $(call ...) would split the argument
# APScheduler 4, a peer of the sustained-load scenario, is the package `apscheduler` like the
# APScheduler 3 of the `bench` extra: it goes to a directory of its own, which only its nodes'
# processes put first on their path (benchmarks/sustained.py). Its alpha 6 needs anyio < 4.10.
PEERS := $(VENV)/peers
APSCHEDULER4 := apscheduler[asyncpg,sqlalchemy]==4.0.0a6 anyio>=4.9,<4.10 sniffio>=1.3,<2
APSCHEDULER4_STAMP := $(PEERS)/.installed-apscheduler4-$(shell echo '$(APSCHEDULER4)' | cksum | cut -d' ' -f1)

.PHONY: run test lint bench fuzz readme install clean

install: $(DEV) $(BENCH)

# $(1): the stamp, $(2): what pip installs. A stamp is dropped when pyproject.toml changes.
define venv
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "onair needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '$(2)'
	find $(VENV) -maxdepth 1 -name '.installed-*' ! -name '*-$(SUM)' -delete
	touch $(1)
endef

$(SERVE): pyproject.toml
	$(call venv,$(SERVE),.)

$(DEV): pyproject.toml
	$(call venv,$(DEV),.[dev])
	touch $(SERVE)

$(BENCH): pyproject.toml
	$(call venv,$(BENCH),$(WITH_BENCH))
	touch $(SERVE) $(DEV)

run: $(SERVE)
	@echo "onair is $(BIN)/onair: \`source $(BIN)/activate\` puts it on your PATH"
	$(BIN)/onair serve

# Four workers on two cores: most tests wait on servers, ffmpeg and instants, not on the CPU
# (1,211 tests: 6.1 min with 4, 9.0 min with 2, on a loaded 2-core machine).
test: $(DEV)
	$(BIN)/pytest -n 4 --dist loadfile --reruns 1

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

$(APSCHEDULER4_STAMP): $(BENCH)
	rm -rf $(PEERS)/apscheduler4 $(PEERS)/.installed-apscheduler4-*
	$(BIN)/python -m pip install --quiet --target $(PEERS)/apscheduler4 $(foreach p,$(APSCHEDULER4),'$(p)')
	touch $@

bench: $(BENCH) $(APSCHEDULER4_STAMP)
	$(BIN)/python -m benchmarks

# The fuzz suite of CI (tests/integration/test_fuzz.py), longer and new examples each run
# (about 10 minutes), and the property of the rule bounds (tests/unit/test_rule_bounds.py)
# on 5,000 rules.
fuzz: $(DEV)
	ONAIR_FUZZ_EXAMPLES=100 ONAIR_FUZZ_CONDITIONS=300 ONAIR_FUZZ_RANDOM=1 ONAIR_FUZZ_RULES=5000 \
		$(BIN)/pytest tests/integration/test_fuzz.py tests/unit/test_rule_bounds.py -n 0 \
		-p no:cacheprovider -rA

readme: $(SERVE)
	$(BIN)/onair settings --readme README.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
