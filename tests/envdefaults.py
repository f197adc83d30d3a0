"""Loaded by pytest before Django: test-only defaults, so that plain `pytest` works too."""

import os

# Tests run with DEBUG off, also in a checkout that `make run` marked for local use.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "ledgerguard-test-only-insecure-key-do-not-use-in-production")
os.environ.setdefault("AUDIT_SIGNING_KEY", "ledgerguard-test-only-audit-signing-key")
os.environ.setdefault("AUDIT_ALLOW_FLUSH", "1")
# Pages name static files as they are, without collectstatic's manifest (production's hashed
# names; tests/e2e/test_gunicorn.py runs with them).
os.environ.setdefault("STATIC_MANIFEST", "0")
# The suite runs as one role; tests that separate the owner from the application set this for
# the processes they start (tests/config/test_db_roles.py).
os.environ.pop("DATABASE_MIGRATE_URL", None)
# Request metrics are counted in every test, and written only where a test asks
# (tests/monitoring/test_request_metrics.py): a write at the end of any request would touch
# the database in tests that have none.
os.environ.setdefault("MONITORING_WRITE_AFTER_RESPONSE", "0")
# Staff's second factor on the admin is production's default; the tests that are about it turn
# it on (tests/config/test_twofactor.py), the rest log in with force_login.
os.environ.setdefault("ADMIN_REQUIRE_2FA", "0")
# The API schema and docs are staff-only with DEBUG off; the suite reads them anonymously (the
# contract tests, Schemathesis). tests/config/test_headers_csp.py tests them staff-only.
os.environ.setdefault("API_DOCS_PUBLIC", "1")
# The suite keeps a per-process cache, cleared by every test (tests/conftest.py), and no
# request rates, so that no test is throttled by the ones before it: the throttle tests set
# rates and the database cache production uses (tests/config/test_throttling.py).
os.environ.setdefault("CACHE_URL", "locmemcache://")
os.environ.setdefault("THROTTLE_ANON_RATE", "")
os.environ.setdefault("THROTTLE_USER_RATE", "")
os.environ.setdefault("THROTTLE_LOGIN_RATE", "10/min")
