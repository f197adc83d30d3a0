# Ledgerguard developer commands.
#
#   make run          migrate, seed the demo company, start web + worker
#   make serve        the production processes on this machine: gunicorn + worker, DEBUG off
#   make local-use    mark this checkout for local use: manage.py commands run by hand get
#                     DEBUG=1 like `make run` (which does this itself)
#   make local-keys   generate the local keys that settings read with DEBUG on (var/secret_key,
#                     var/audit_signing_key, var/alert_webhook_secret), once; make run does
#   make test         lint, layers, types, `manage.py check`, pytest on SQLite and on PostgreSQL
#   make test-sqlite  pytest on SQLite only
#   make pgbackrest   install pgBackRest if missing (apt-get, as root; install-test does this)
#   make chromium     install Debian's Chromium if missing, for tests/browser (likewise)
#   make test-postgres  pytest on PostgreSQL only ($DATABASE_URL if it is a
#                     postgres URL, else a throwaway server from scripts/with-postgres.sh)
#   make lint         ruff check + ruff format --check
#   make audit-deps   known vulnerabilities in the installed packages (pip-audit): fails on one
#                     found, warns when the look-up cannot be made (no network); make test runs it
#   make arch         the layers (import-linter contracts in pyproject.toml) and mypy
#   make format       ruff format + ruff check --fix
#   make fuzz         a long Schemathesis run of the API on both engines (FUZZ_EXAMPLES, default 100)
#   make bench        every benchmark, then one table (a throwaway durable PostgreSQL unless
#                     DATABASE_URL is set); BENCHMARKS=posting for one
#   make bench-backup benchmarks/backup.py: backup, verify, drill of 1M lines vs pg_dump + pg_restore
#   make bench-monitoring benchmarks/monitoring_overhead.py: gunicorn with and without request metrics
#   make bench-dashboards benchmarks/dashboards.py: each dashboard's render time with a year of data
#   make screenshots  the dashboards' screenshots in docs/img/dashboards/, from a year of demo data
#                     (the browser tests, tests/browser/test_dashboards.py, take them)
#   make clean        remove test databases and tool caches (keeps .venv and the dev database)
#
# Variables: PORT (make run and make serve, default 8000), PYTEST_ARGS (e.g. PYTEST_ARGS="-x -k ledger"),
# PYTEST_WORKERS (pytest-xdist processes per engine, default 2; 0 runs in one process),
# PYTHON (interpreter used to create .venv, default python3).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
RUFF := $(VENV)/bin/ruff
PYTEST := $(VENV)/bin/pytest
HONCHO := $(VENV)/bin/honcho

PORT ?= 8000
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
PYTEST_XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS))
BENCH_ARGS ?=

SQLITE_TEST_URL := sqlite:///var/ledgerguard-test.sqlite3

# Settings refuse to start with DEBUG off and no SECRET_KEY (as they should in
# production). Tests, `manage.py check` and benchmarks run with DEBUG off (even in a
# checkout marked for local use), so give them a throwaway key unless the caller brought one.
TEST_SECRET_KEY := ledgerguard-test-only-insecure-key-do-not-use-in-production
test test-sqlite test-postgres fuzz check bench bench-backup bench-monitoring arch: export SECRET_KEY ?= $(TEST_SECRET_KEY)
test test-sqlite test-postgres fuzz check bench bench-backup bench-monitoring arch: export DEBUG ?= 0

# `check --deploy` as production runs: DEBUG off, every secret set, HTTPS (tests/config/
# test_deploy_check.py runs the same in a subprocess). Throwaway values, never used elsewhere.
DEPLOY_ENV := env DEBUG=0 SECRET_KEY=deploy-check-$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	AUDIT_SIGNING_KEY=deploy-check-audit-key ALERT_WEBHOOK_SECRET=deploy-check-webhook-secret \
	SECURE_SSL_REDIRECT=1 SECURE_HSTS_PRELOAD=1 ALLOWED_HOSTS=ledgerguard.example

# `make run` is for local use: DEBUG on (settings then read the keys local-keys made in var/).
run: export DEBUG = 1

# `make serve` tries the production form locally: DEBUG off, the local keys from var/ (made
# here if missing), plain HTTP on 127.0.0.1 (hence cookies without the Secure flag).
serve: export DEBUG = 0
serve: export SECRET_KEY ?= $(shell cat var/secret_key 2>/dev/null)
serve: export AUDIT_SIGNING_KEY ?= $(shell cat var/audit_signing_key 2>/dev/null)
serve: export SESSION_COOKIE_SECURE ?= 0
serve: export CSRF_COOKIE_SECURE ?= 0
serve: export GUNICORN_CMD_ARGS ?= --bind 127.0.0.1:$(PORT)

.PHONY: help venv install install-run install-test pgbackrest chromium local-use local-keys run serve test \
	test-sqlite test-postgres fuzz check lint arch format clean bench bench-backup \
	bench-monitoring bench-dashboards screenshots wrk audit-deps

help:
	@sed -n '1,/^$$/{s/^# \{0,1\}//;p}' $(firstword $(MAKEFILE_LIST))

# --- environment -------------------------------------------------------------

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)

# Stamps: reinstall only when pyproject.toml changes (or the venv is new).
$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: install-run
install-run: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test pgbackrest chromium

# pgBackRest, which tests/backups/test_pgbackrest.py drives against a real stanza (tested with
# 2.45, Debian 12's package). Installed with apt-get when missing and we are root; otherwise
# this says how, and those tests skip saying why. Not fatal: the rest of the suite needs none.
pgbackrest:
	@if command -v pgbackrest >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing pgBackRest: apt-get install -y pgbackrest"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq pgbackrest; } || \
			echo "warning: could not install pgbackrest; its tests will be skipped"; \
	else \
		echo "note: pgbackrest is not installed, so its tests will be skipped. Install it with"; \
		echo "      sudo apt-get install pgbackrest (Debian/Ubuntu), or see https://pgbackrest.org"; \
	fi

# Debian's Chromium, which tests/browser drives with Playwright (no browser download). Installed
# with apt-get when missing and we are root; otherwise this says how, and those tests skip.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing Chromium: apt-get install -y chromium"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } || \
			echo "warning: could not install chromium; the browser tests will be skipped"; \
	else \
		echo "note: chromium is not installed, so the browser tests will be skipped. Install it"; \
		echo "      with sudo apt-get install chromium (Debian/Ubuntu)"; \
	fi

var:
	mkdir -p var

# --- run -----------------------------------------------------------------------

# The Procfile's web process listens on $LEDGERGUARD_PORT, not $PORT: honcho
# 2.0 overwrites PORT in every process (5000 by default, +100 per process
# type). We still pass -p so that $PORT agrees inside the web process.
# `-e /dev/null`: honcho would otherwise read ./.env into web and worker but
# not into the migrate/seed steps above, which would then disagree (settings
# read only the real environment).
# The mark that config/settings.py reads: DEBUG on unless the environment sets it, in this
# folder only (a copy of var/ elsewhere is not marked). Rewritten each time, in case it moved.
local-use: var
	@printf '%s\n' '# Written by make run (make local-use): this checkout is for local use, so' \
		'# DEBUG is on unless the environment sets it. Delete this file to undo.' \
		'checkout=$(CURDIR)' > var/local-use

# Local keys, made once (mode 600) and never by settings, which only read them: with DEBUG on
# (make run, a checkout marked for local use) for SECRET_KEY, AUDIT_SIGNING_KEY and
# ALERT_WEBHOOK_SECRET when the environment has none; make serve exports the first two.
# $(PYTHON), not the venv's: the standard library is enough, and no venv is needed.
LOCAL_KEYS := var/secret_key var/audit_signing_key var/alert_webhook_secret

$(LOCAL_KEYS): | var
	umask 077; $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@.tmp
	mv $@.tmp $@

local-keys: $(LOCAL_KEYS)

run: install-run var local-use local-keys
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py sync_schedules
	@echo
	@echo "================================================================================"
	@echo "  Ledgerguard is running at http://127.0.0.1:$(PORT)/"
	@echo "    admin:    http://127.0.0.1:$(PORT)/admin/"
	@echo "    API docs: http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  demo login: admin / ledgerguard-demo"
	@echo "    (also clerk, approver, auditor, operator with the same password)"
	@echo "  Stop with Ctrl-C."
	@echo "================================================================================"
	@echo
	LEDGERGUARD_PORT=$(PORT) exec $(HONCHO) start -f Procfile -e /dev/null -p $(PORT)

# Procfile.production's release step, then its web (gunicorn) and worker processes; honcho
# sets PORT for web from -p. The Procfile names plain `gunicorn`, as a deployment has it on PATH.
serve: install-run var local-keys
	scripts/release.sh
	@echo
	@echo "================================================================================"
	@echo "  Ledgerguard (gunicorn, DEBUG off) is running at http://127.0.0.1:$(PORT)/"
	@echo "  Stop with Ctrl-C."
	@echo "================================================================================"
	@echo
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(HONCHO) start -f Procfile.production \
		-e /dev/null -p $(PORT) web worker

# --- quality -------------------------------------------------------------------

lint: install-test
	$(RUFF) check .
	$(RUFF) format --check .

# The layer order of docs/architecture.md (every import, function-level ones too) and the types.
arch: install-test
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .

format: install-test
	$(RUFF) format .
	$(RUFF) check --fix .

check: install-test
	$(PY) manage.py check

# scripts/audit-deps.sh: pip-audit over the venv's packages, not the editable project itself.
# PIP_AUDIT and PIP_AUDIT_ARGS (e.g. "-s osv") are passed through.
PIP_AUDIT ?= $(VENV)/bin/pip-audit
audit-deps: install-test
	@PIP_AUDIT=$(PIP_AUDIT) PYTHON=$(PY) scripts/audit-deps.sh

# --- tests ---------------------------------------------------------------------

# SQLite: always a file under var/, whatever DATABASE_URL says.
run_pytest_sqlite = echo "==> pytest on SQLite ($(SQLITE_TEST_URL))"; \
	env -u DATABASE_URL DATABASE_URL=$(SQLITE_TEST_URL) $(PYTEST) $(PYTEST_XDIST) $(PYTEST_ARGS)

# PostgreSQL: the caller's server if DATABASE_URL names one, else a throwaway one.
run_pytest_postgres = case "$${DATABASE_URL:-}" in \
	postgres*) echo "==> pytest on PostgreSQL (DATABASE_URL from the environment)"; \
		$(PYTEST) $(PYTEST_XDIST) $(PYTEST_ARGS) ;; \
	*) echo "==> pytest on PostgreSQL (throwaway server from scripts/with-postgres.sh)"; \
		env -u DATABASE_URL scripts/with-postgres.sh $(PYTEST) $(PYTEST_XDIST) $(PYTEST_ARGS) ;; \
	esac

# Both engines always run; the target fails if either fails. A known vulnerability in an
# installed package fails it first (audit-deps).
test: install-test var audit-deps
	$(RUFF) check .
	$(RUFF) format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .
	$(PY) manage.py check
	$(DEPLOY_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run
	@sqlite=0; postgres=0; \
	{ $(run_pytest_sqlite); } || sqlite=$$?; \
	{ $(run_pytest_postgres); } || postgres=$$?; \
	echo "==> pytest exit status: SQLite $$sqlite, PostgreSQL $$postgres"; \
	[ "$$sqlite" -eq 0 ] && [ "$$postgres" -eq 0 ]

test-sqlite: install-test var
	@$(run_pytest_sqlite)

test-postgres: install-test var
	@$(run_pytest_postgres)

# The Schemathesis test of `make test` (tests/fuzz/test_schemathesis.py), longer: FUZZ_EXAMPLES
# generated requests per operation, and every phase (coverage included) for every role.
FUZZ_EXAMPLES ?= 100
fuzz: export FUZZ_MAX_EXAMPLES = $(FUZZ_EXAMPLES)
fuzz: export FUZZ_ROLE_PHASES = examples,coverage,fuzzing
fuzz: PYTEST := $(PYTEST) tests/fuzz/test_schemathesis.py -p no:logging
fuzz: install-test var
	@sqlite=0; postgres=0; \
	{ $(run_pytest_sqlite); } || sqlite=$$?; \
	{ $(run_pytest_postgres); } || postgres=$$?; \
	echo "==> fuzz exit status: SQLite $$sqlite, PostgreSQL $$postgres"; \
	[ "$$sqlite" -eq 0 ] && [ "$$postgres" -eq 0 ]

# --- benchmarks -----------------------------------------------------------------

# Every benchmark, on one throwaway PostgreSQL with durability on (PG_DURABLE=1: fsync and
# synchronous commit, as production runs) unless DATABASE_URL is set, then one table of figure,
# value, baseline, ratio and target (benchmarks/table.py). Takes about half an hour; one
# benchmark alone: `make bench BENCHMARKS=posting`.
BENCHMARKS ?= posting audit checks operations alert_latency backup monitoring_overhead dashboards
bench: install-test install-run var wrk
	@figures="$$(mktemp)"; \
	run='for b in $(BENCHMARKS); do echo "==> benchmarks/$$b.py"; $(PY) benchmarks/$$b.py || exit 1; done'; \
	case "$${DATABASE_URL:-}" in \
	"") BENCH_FIGURES="$$figures" PG_DURABLE=1 scripts/with-postgres.sh sh -c "$$run" ;; \
	*) BENCH_FIGURES="$$figures" sh -c "$$run" ;; \
	esac || { rm -f "$$figures"; exit 1; }; \
	echo; $(PY) benchmarks/table.py "$$figures"; rm -f "$$figures"

# backup, verify and drill of 1,000,000 journal lines against bare pg_dump + pg_restore.
bench-backup: install-test var
	@case "$${DATABASE_URL:-}" in \
	"") scripts/with-postgres.sh $(PY) benchmarks/backup.py $(BENCH_ARGS) ;; \
	*) $(PY) benchmarks/backup.py $(BENCH_ARGS) ;; \
	esac

# Each dashboard page's render time with a year of demo data, against the stock change list.
bench-dashboards: install-test var
	@case "$${DATABASE_URL:-}" in \
	"") scripts/with-postgres.sh $(PY) benchmarks/dashboards.py $(BENCH_ARGS) ;; \
	*) $(PY) benchmarks/dashboards.py $(BENCH_ARGS) ;; \
	esac

# The docs' screenshots: the browser tests as the admin, on a year of demo data, on SQLite.
screenshots: export SECRET_KEY ?= $(TEST_SECRET_KEY)
screenshots: export DEBUG ?= 0
screenshots: install-test var
	env -u DATABASE_URL DATABASE_URL=$(SQLITE_TEST_URL) DEMO_DAYS=365 \
		DASHBOARD_SCREENSHOTS=docs/img/dashboards $(PYTEST) -p no:cacheprovider -q \
		"tests/browser/test_dashboards.py::test_each_role_opens_every_dashboard_it_may_see[admin]"

# The request metrics' cost: gunicorn with them on and off under wrk, alternating pairs.
bench-monitoring: install-run var wrk
	$(PY) benchmarks/monitoring_overhead.py $(BENCH_ARGS)

# wrk, the HTTP load generator bench-monitoring drives (Debian's package, installed with apt-get
# when missing and we are root; otherwise this says how).
wrk:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; } \
		|| { echo "bench-monitoring needs wrk: apt-get install wrk"; exit 1; }

# --- housekeeping ------------------------------------------------------------------

# Test databases (including pytest-xdist's per-worker copies and SQLite's WAL
# files) and tool caches. Keeps .venv, the dev database var/ledgerguard.sqlite3,
# var/secret_key and var/backups.
clean:
	rm -f var/*test*.sqlite3 var/*test*.sqlite3-wal var/*test*.sqlite3-shm \
		var/*test*.sqlite3-journal var/*test*.sqlite3_gw*
	rm -rf .pytest_cache .ruff_cache var/qcluster-e2e.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
