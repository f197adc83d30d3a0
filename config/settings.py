"""Ledgerguard settings: one file, driven by environment variables.

Every variable read here is listed with its default in docs/configuration.md. Reading these
settings changes nothing: they read the environment and, for local use, the files `make run`
wrote into var/ (the mark and the generated keys). One file on purpose, longer than other
modules: every setting and its default in one place, as the team's design asks (its Layout
section; docs/architecture.md records the length).
"""

import ipaddress
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def _marked_for_local_use() -> bool:
    """`make run` marks its checkout for local use in var/local-use (ignored by git), so that
    commands run there by hand get the server's DEBUG=1 without exporting it. The mark names
    the checkout's folder: a copy of var/ elsewhere (an image built from this folder) is not
    marked."""
    try:
        text = (VAR_DIR / "local-use").read_text()
    except OSError:
        return False
    folders = [
        line[len("checkout=") :] for line in text.splitlines() if line.startswith("checkout=")
    ]
    return bool(folders) and Path(folders[-1]).resolve() == BASE_DIR


# Off unless set, or unless `make run` marked this checkout for local use (the environment wins).
DEBUG = env.bool("DEBUG", default=_marked_for_local_use())


def _local_secret(name: str) -> str:
    """Local use only (DEBUG): the key `make run` generated once into var/ (`make local-keys`;
    git ignores var/), or "" when there is none."""
    try:
        return (VAR_DIR / name).read_text().strip()
    except FileNotFoundError:
        return ""


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Ledgerguard refuses to start with DEBUG off and no "
            "SECRET_KEY: set SECRET_KEY to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), or set DEBUG=1 "
            "for local use, where the key generated once into var/secret_key is used (`make "
            "run` does, and marks the checkout so that manage.py commands run there do too)."
        )
    key = _local_secret("secret_key")
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and there is no var/secret_key for local use (DEBUG on): "
            "`make run` generates it, or `make local-keys` alone."
        )
    return key


SECRET_KEY = _secret_key()
# Keys used before a rotation (comma-separated): sessions, signed links and backup manifests made
# under them still verify, while new ones are signed with SECRET_KEY (docs/security.md, Secrets).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Under /api/ a CSRF failure answers in the API's JSON error shape.
CSRF_FAILURE_VIEW = "config.exceptions.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # runserver leaves static files to WhiteNoise too, as in production.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_q",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "config",
    "finance",
    "integrity",
    "audit",
    "backups",
    "monitoring",
    "alerts",
]

MIDDLEWARE = [
    # Outermost (it reads only the path): every answer gets Permissions-Policy, and every /api/
    # answer `Cache-Control: no-store`, the refusals of the middleware below included.
    "config.middleware.SecurityHeadersMiddleware",
    # Then, before anything reads a header: control characters in header values are refused.
    "config.middleware.HeaderSanityMiddleware",
    # Then the request metrics: their duration covers all of Django's work after it.
    "monitoring.requestmetrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise: static files get the policy and headers too (an SVG is a document).
    "csp.middleware.CSPMiddleware",
    # Static files (admin, Swagger UI, ReDoc) answered here, before any other work (WhiteNoise).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestContextMiddleware",
    "audit.middleware.AuditDenialMiddleware",
    "monitoring.middleware.ErrorCaptureMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(), then the admin's second factor (config/twofactor/).
    "django_otp.middleware.OTPMiddleware",
    "config.twofactor.middleware.AdminTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sessions past their idle or absolute lifetime are logged out (config/sessions.py).
    "config.sessions.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: turns a login refused for a lockout into the lockout answer (429).
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out username and address before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Databases -------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'ledgerguard.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: a writing transaction takes the write lock when it begins, so two
    # posters queue instead of failing with "database is locked" on upgrade.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    if _db["NAME"] not in ("", ":memory:"):
        # `migrate` makes the file's folder (config/management/commands/migrate.py).
        # Tests use a file so that a real qcluster process can see the test database.
        _db.setdefault("TEST", {})["NAME"] = str(Path(_db["NAME"]).with_suffix(".test.sqlite3"))
elif _db["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    _db["CONN_HEALTH_CHECKS"] = True
else:
    raise ImproperlyConfigured(
        f"DATABASE_URL names an unsupported engine ({_db['ENGINE']}); use sqlite:// or postgres://"
    )

# Optional, PostgreSQL: the tables' owner, which `manage.py migrate` connects as when the
# application's role (DATABASE_URL) does not own them (docs/audit.md, "A role that does not own").
_migrate_url = env.str("DATABASE_MIGRATE_URL", default="")
DATABASE_MIGRATE = env.db_url_config(_migrate_url) if _migrate_url else {}
_postgres = "django.db.backends.postgresql"
if DATABASE_MIGRATE and not (_db["ENGINE"] == DATABASE_MIGRATE["ENGINE"] == _postgres):
    raise ImproperlyConfigured(
        "DATABASE_MIGRATE_URL and DATABASE_URL must both be postgres:// URLs: SQLite has no "
        "database roles to keep apart"
    )
if DATABASE_MIGRATE and DATABASE_MIGRATE["NAME"] != _db["NAME"]:
    raise ImproperlyConfigured(
        "DATABASE_MIGRATE_URL must name the same database as DATABASE_URL "
        f"({_db['NAME']!r}), as the role that owns its tables"
    )

# Django's backends, plus the engine features and the before-commit hooks (config/db/).
_db["ENGINE"] = {
    "django.db.backends.sqlite3": "config.db.sqlite3",
    "django.db.backends.postgresql": "config.db.postgresql",
}[_db["ENGINE"]]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every process (throttle counts, django-q2's cluster status): the database by default
# (the table is made by `manage.py migrate`), Redis (`redis://...`) for large deployments.
# Never a per-process cache in production: each process would count its own requests.
# Room for 10,000 entries: beyond its limit the database cache deletes a third of them, live
# throttle counts included, which many addresses at once could otherwise force (300 by default).
CACHES = {
    "default": env.cache_url("CACHE_URL", default="dbcache://ledgerguard_cache?max_entries=10000")
}

# Auth ------------------------------------------------------------------------

PASSWORD_MIN_LENGTH = env.int("PASSWORD_MIN_LENGTH", default=12)
if PASSWORD_MIN_LENGTH < 8:
    raise ImproperlyConfigured("PASSWORD_MIN_LENGTH must be at least 8 (ASVS asks for 12)")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule: a changed password revokes the user's API tokens (config/passwords.py).
    {"NAME": "config.passwords.RevokeApiTokensOnPasswordChange"},
]
LOGIN_URL = "admin:login"
# Argon2 first: new and changed passwords. The others only read older hashes, which Django
# rewrites as Argon2 at the user's next successful login (docs/security.md, "Passwords").
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Two-factor authentication (django-otp) --------------------------------------------

# Staff must pass a TOTP or recovery code on the admin (and for session API calls and API
# tokens). Off only where DEBUG is on, and in the test suite (tests/envdefaults.py). A user who
# enrolled a device needs the second factor whatever this says.
ADMIN_REQUIRE_2FA = env.bool("ADMIN_REQUIRE_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Ledgerguard")
# django-otp's throttling per device: after n failed codes in a row, the next is refused for
# factor * 2^(n-1) seconds. 0 would switch it off, so it is refused.
OTP_TOTP_THROTTLE_FACTOR = env.int("OTP_THROTTLE_FACTOR", default=1)
OTP_STATIC_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
if OTP_TOTP_THROTTLE_FACTOR < 1:
    raise ImproperlyConfigured("OTP_THROTTLE_FACTOR must be at least 1 (0 turns throttling off)")
# Secrets of devices never shown in django-otp's admin (its device admins are not registered).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Sessions (config/sessions.py, config/sessionstore.py) ----------------------------------------

# A signed-in session ends after this many minutes without a request, and this many hours after
# login whatever happens; the store keeps a hash of each session key, never the key.
SESSION_IDLE_TIMEOUT_MINUTES = env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=30)
SESSION_MAX_AGE_HOURS = env.int("SESSION_MAX_AGE_HOURS", default=12)
if SESSION_IDLE_TIMEOUT_MINUTES < 1 or SESSION_MAX_AGE_HOURS < 1:
    raise ImproperlyConfigured("SESSION_IDLE_TIMEOUT_MINUTES and SESSION_MAX_AGE_HOURS: 1 or more")
SESSION_ENGINE = "config.sessionstore"
SESSION_COOKIE_AGE = SESSION_MAX_AGE_HOURS * 3600

API_TOKEN_DEFAULT_TTL_DAYS = env.int("API_TOKEN_DEFAULT_TTL_DAYS", default=90)
API_TOKEN_MAX_TTL_DAYS = env.int("API_TOKEN_MAX_TTL_DAYS", default=365)

# Internationalisation --------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
# Hashed, compressed names from `collectstatic`'s manifest, cached for a year by browsers; pages
# fail until collectstatic has run, so local use (DEBUG) and tests (envdefaults) do without.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)

# Email -----------------------------------------------------------------------

# EMAIL_URL in django-environ's format (smtp://, smtp+tls://, smtp+ssl://, consolemail://).
_email = env.email_url("EMAIL_URL", default="consolemail://")
# A provider through django-anymail: EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend and its
# settings as ANYMAIL_<NAME> variables (for example ANYMAIL_MAILGUN_API_KEY).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="") or _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH", "")
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_")
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ledgerguard@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Security: cookies, HTTPS, headers (docs/security.md, "Headers and Content Security Policy") --

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
# Lax: the session still arrives when a link in an alert email opens the admin; Strict would
# show such a user the login page although they are logged in.
SESSION_COOKIE_SAMESITE = env.str("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Strict: the CSRF cookie is only ever needed on a POST from our own pages, never on arrival
# from elsewhere. HTTP-only: no script of ours reads it (the admin and Swagger UI take the
# token from the page).
CSRF_COOKIE_SAMESITE = env.str("CSRF_COOKIE_SAMESITE", default="Strict")
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Sent on HTTPS responses only. A year with subdomains in production; preload only by choice
# (it asks browsers to hard-code the domain, undone only in months).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Browser features no page of ours uses, denied to every page (config.middleware).
PERMISSIONS_POLICY = env.str(
    "PERMISSIONS_POLICY",
    default="accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=(), serial=(), "
    "hid=(), interest-cohort=()",
)
# System check ids to silence, e.g. security.W021 when the domain will not be HSTS-preloaded.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# Request size: bodies above this many bytes answer 413, forms with more fields 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=1000)

# Content Security Policy (django-csp 4). No inline script or style anywhere: a page that needs
# a script of its own puts nonce="{{ request.csp_nonce }}" on it (the nonce is only in the header
# of pages that read it). Violations are reported to CSP_REPORT_ENDPOINT (the error log by default).
CSP_REPORT_ENDPOINT = env.str("CSP_REPORT_ENDPOINT", default="/csp-report/")
_csp_policy = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        # data: for the small SVG icons of the admin's and Swagger UI's style sheets.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        # ReDoc runs its search in a Web Worker it makes from a blob: URL.
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": [CSP_REPORT_ENDPOINT],
        "report-to": "csp",
    }
}
# The report endpoint (/csp-report/) refuses bodies over this size, and stores at most this many
# events per error group and window; past that a report only counts on its group.
CSP_REPORT_MAX_BYTES = env.int("CSP_REPORT_MAX_BYTES", default=16_384)
CSP_REPORT_EVENTS_PER_WINDOW = env.int("CSP_REPORT_EVENTS_PER_WINDOW", default=20)
CSP_REPORT_WINDOW_MINUTES = env.int("CSP_REPORT_WINDOW_MINUTES", default=60)
# Off: the policy is only reported (Content-Security-Policy-Report-Only), nothing is blocked;
# for trying out a change to the policy in production.
CSP_ENFORCE = env.bool("CSP_ENFORCE", default=True)
if CSP_ENFORCE:
    CONTENT_SECURITY_POLICY = _csp_policy
else:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp_policy

# Where the admin is (no leading slash, a trailing one), and who may read the API schema and docs.
ADMIN_URL = env.str("ADMIN_URL", default="admin/").strip("/") + "/"
# Off: staff only (anonymous: 401/403 for the schema, the login page for the docs).
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=DEBUG)

# REST framework --------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.ApiTokenAuthentication",
        "config.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.ModelPermissions"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    # JSON only: DRF's browsable API pages carry inline styles and scripts that the Content
    # Security Policy refuses; people read the API in its docs (/api/docs/).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "config.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Throttles identify clients by REMOTE_ADDR unless this many proxies are trusted to set
    # X-Forwarded-For; otherwise any client could dodge a throttle by forging that header.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    # Rates per client in the shared cache (config/throttling.py); an empty rate is no limit.
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonThrottle",
        "config.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON_RATE", default="60/min"),
        "user": env.str("THROTTLE_USER_RATE", default="600/min"),
        # POST /api/v1/auth/token/ and the admin login POST, together, per address.
        "login": env.str("THROTTLE_LOGIN_RATE", default="10/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Ledgerguard API",
    "DESCRIPTION": "Double-entry ledger with production controls. Errors always have the "
    'shape {"error": {"code", "message", "fields"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models have a `trigger` with their own choices: each its own enum name.
    "ENUM_NAME_OVERRIDES": {
        "BackupTriggerEnum": "backups.models.Backup.Trigger",
        "CheckRunTriggerEnum": "integrity.models.CheckRun.Trigger",
        "ThresholdSeverityEnum": "monitoring.models.ThresholdSeverity",
        "SeverityEnum": "alerts.models.Severity",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
        "config.schema.describe_values",
    ],
}

IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)

# Ledger ----------------------------------------------------------------------

# Entries whose debit total in a currency reaches the threshold need a second person's
# approval. Manual entries need it by default (threshold 0); "*" is the fallback.
LEDGER_APPROVAL_THRESHOLDS = {
    code: Decimal(amount)
    for code, amount in env.dict("LEDGER_APPROVAL_THRESHOLDS", default={"*": "0"}).items()
}
LEDGER_MAX_FUTURE_DAYS = env.int("LEDGER_MAX_FUTURE_DAYS", default=31)

# django-q2 -------------------------------------------------------------------

# timeout < retry (or a task runs twice); max_attempts bounds retries (default is forever).
Q_CLUSTER = {
    "name": "ledgerguard",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "poll": env.float("Q_POLL", default=1.0),
    # The cluster runs the scheduler every 30 s of guard cycles; a cycle of 30 runs it at start.
    "guard_cycle": env.float("Q_GUARD_CYCLE", default=0.5),
    # Failed tasks are not acknowledged: the broker presents them again after `retry` seconds,
    # up to max_attempts; the last failure becomes a dead letter (integrity).
    "ack_failures": False,
    "label": "Task queue",
}

# Logging ---------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "client_error": {"()": "config.logfilters.ClientErrorWithoutTraceback"},
        # Signed acknowledge links in request paths are masked (docs/security.md, "Secrets").
        "secret_paths": {"()": "config.logfilters.SecretPaths"},
    },
    "handlers": {
        # The filter here too: it also reaches django.security.* (a 400 for a bad Host header).
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_error", "secret_paths"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console handler (DEBUG only) printed every django.* record a second
        # time next to the root's; the root's console is the one place records are written.
        "django": {"handlers": [], "propagate": True},
        "django.request": {"filters": ["client_error", "secret_paths"]},
        "django.security.csrf": {"filters": ["secret_paths"]},
        # runserver's request lines: Django's own handler would be dropped by naming the logger.
        "django.server": {"handlers": ["console"], "filters": ["secret_paths"], "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # django-health-check logs a traceback for every failing component on every probe;
        # the probe's answer says it already (unexpected errors in a check still log).
        "health_check": {"level": "ERROR"},
    },
}

# Error log -------------------------------------------------------------------

# Events older than this are purged daily (groups and their counts stay), as are all but the
# newest events of a group over the cap.
ERROR_LOG_RETENTION_DAYS = env.int("ERROR_LOG_RETENTION_DAYS", default=90)
ERROR_LOG_MAX_EVENTS_PER_GROUP = env.int("ERROR_LOG_MAX_EVENTS_PER_GROUP", default=200)
# A spike: at least MIN_EVENTS in the window, and FACTOR times the group's average per window
# over the baseline hours before it. Alerted at most once per window per group.
ERROR_LOG_SPIKE_WINDOW_MINUTES = env.int("ERROR_LOG_SPIKE_WINDOW_MINUTES", default=5)
ERROR_LOG_SPIKE_MIN_EVENTS = env.int("ERROR_LOG_SPIKE_MIN_EVENTS", default=10)
ERROR_LOG_SPIKE_FACTOR = env.float("ERROR_LOG_SPIKE_FACTOR", default=5.0)
ERROR_LOG_SPIKE_BASELINE_HOURS = env.int("ERROR_LOG_SPIKE_BASELINE_HOURS", default=24)

# Performance monitoring ----------------------------------------------------------

# Per-request metrics (monitoring/requestmetrics.py): minute buckets in the database, and the
# Prometheus histogram at /metrics. Each process writes its buckets at most this often.
MONITORING_REQUEST_METRICS = env.bool("MONITORING_REQUEST_METRICS", default=True)
MONITORING_FLUSH_SECONDS = env.float("MONITORING_FLUSH_SECONDS", default=10.0)
# Off only in the test suite, which writes them where a test asks (tests/envdefaults.py).
MONITORING_WRITE_AFTER_RESPONSE = env.bool("MONITORING_WRITE_AFTER_RESPONSE", default=True)
# Who may read /metrics: clients in these networks (loopback by default, so that a Prometheus
# on the same host works), or any client sending `Authorization: Bearer <token>`.
MONITORING_METRICS_NETWORKS = [
    ipaddress.ip_network(n)
    for n in env.list("MONITORING_METRICS_NETWORKS", default=["127.0.0.0/8", "::1/128"])
]
MONITORING_METRICS_TOKEN = env.str("MONITORING_METRICS_TOKEN", default="")
# Requests and database queries slower than these are recorded (monitoring.SlowRequest,
# monitoring.SlowQuery with the statement's shape, never its values).
MONITORING_SLOW_REQUEST_MS = env.float("MONITORING_SLOW_REQUEST_MS", default=1000.0)
MONITORING_SLOW_QUERY_MS = env.float("MONITORING_SLOW_QUERY_MS", default=200.0)
# Thresholds (monitoring.Threshold) read their request and task metrics over this window.
MONITORING_THRESHOLD_WINDOW_MINUTES = env.int("MONITORING_THRESHOLD_WINDOW_MINUTES", default=5)
# Retention by age: minute buckets and snapshots for weeks, daily statistics for years.
MONITORING_RAW_RETENTION_DAYS = env.int("MONITORING_RAW_RETENTION_DAYS", default=35)
MONITORING_DAILY_RETENTION_DAYS = env.int("MONITORING_DAILY_RETENTION_DAYS", default=5 * 366)
# Database and host snapshots (manage.py metrics_snapshot) are taken this often.
MONITORING_SNAPSHOT_MINUTES = env.int("MONITORING_SNAPSHOT_MINUTES", default=5)
if MONITORING_SNAPSHOT_MINUTES < 1:
    raise ImproperlyConfigured("MONITORING_SNAPSHOT_MINUTES must be at least 1")

# Error recovery ----------------------------------------------------------------

OPERATION_MAX_ATTEMPTS = env.int("OPERATION_MAX_ATTEMPTS", default=5)
OPERATION_RETRY_BASE_SECONDS = env.float("OPERATION_RETRY_BASE_SECONDS", default=0.05)
OPERATION_RETRY_MAX_SECONDS = env.float("OPERATION_RETRY_MAX_SECONDS", default=2.0)
OPERATION_RECORD_RETENTION_DAYS = env.int("OPERATION_RECORD_RETENTION_DAYS", default=30)
DEADLETTER_MAX_ATTEMPTS = env.int("DEADLETTER_MAX_ATTEMPTS", default=5)
DEADLETTER_RETRY_BASE_SECONDS = env.int("DEADLETTER_RETRY_BASE_SECONDS", default=60)
DEADLETTER_RETRY_MAX_SECONDS = env.int("DEADLETTER_RETRY_MAX_SECONDS", default=6 * 3600)
DEADLETTER_ALERT_COUNT = env.int("DEADLETTER_ALERT_COUNT", default=10)
DEADLETTER_ALERT_AGE_MINUTES = env.int("DEADLETTER_ALERT_AGE_MINUTES", default=60)

# Checks (integrity and financial) ---------------------------------------------

# Per-check thresholds on the failing count, overriding the registered ones, as JSON:
# {"finance.entry_number_gaps": {"warn": 1, "error": 5}}; null disables a level.
CHECK_THRESHOLDS = env.json("CHECK_THRESHOLDS", default={})
CHECK_SAMPLE_SIZE = env.int("CHECK_SAMPLE_SIZE", default=10)
# A run still running (or queued) after this long belongs to a process that died.
CHECK_RUN_STALE_MINUTES = env.int("CHECK_RUN_STALE_MINUTES", default=60)
CHECK_INTEGRITY_CRON = env.str("CHECK_INTEGRITY_CRON", default="0 2 * * *")
CHECK_FINANCE_CRON = env.str("CHECK_FINANCE_CRON", default="10 * * * *")
CHECK_RECONCILIATION_CRON = env.str("CHECK_RECONCILIATION_CRON", default="40 2 * * *")
# The audit checks (signed checkpoints keeping up), hourly, half an hour after the checkpoint.
CHECK_AUDIT_CRON = env.str("CHECK_AUDIT_CRON", default="35 * * * *")
# The hourly financial run looks at entries posted in this many hours (a margin over one).
CHECK_FINANCE_WINDOW_HOURS = env.int("CHECK_FINANCE_WINDOW_HOURS", default=2)
# Check runs (with their findings) older than this are deleted by a daily job.
CHECK_RUN_RETENTION_DAYS = env.int("CHECK_RUN_RETENTION_DAYS", default=90)
# After each posting commits, re-check the touched accounts' cached balances against their
# lines: "sync" (in the posting's process, after commit), "async" (a django-q2 task), "off".
FINANCE_REALTIME_RECHECK = env.str("FINANCE_REALTIME_RECHECK", default="sync")

# Alerts ------------------------------------------------------------------------

SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
ALERT_DELIVERY_MAX_ATTEMPTS = env.int("ALERT_DELIVERY_MAX_ATTEMPTS", default=5)
ALERT_DELIVERY_RETRY_SECONDS = env.int("ALERT_DELIVERY_RETRY_SECONDS", default=30)
ALERT_ACK_LINK_MAX_AGE_HOURS = env.int("ALERT_ACK_LINK_MAX_AGE_HOURS", default=24)
ALERT_HTTP_TIMEOUT = env.float("ALERT_HTTP_TIMEOUT", default=5.0)
# Signs webhook bodies; without it they go out unsigned and `check --deploy` warns (alerts.W001).
ALERT_WEBHOOK_SECRET = env.str("ALERT_WEBHOOK_SECRET", default="") or (
    _local_secret("alert_webhook_secret") if DEBUG else ""
)
SMS_PROVIDER_URL = env.str("SMS_PROVIDER_URL", default="")
SMS_ACCOUNT_SID = env.str("SMS_ACCOUNT_SID", default="")
SMS_AUTH_TOKEN = env.str("SMS_AUTH_TOKEN", default="")
SMS_FROM_NUMBER = env.str("SMS_FROM_NUMBER", default="")
ALERT_HEARTBEAT_URL = env.str("ALERT_HEARTBEAT_URL", default="")
ALERT_HEARTBEAT_MAX_AGE_SECONDS = env.int("ALERT_HEARTBEAT_MAX_AGE_SECONDS", default=180)
# A new routed alert queues the escalation job at once (delivery within seconds).
ALERT_DISPATCH_IMMEDIATELY = env.bool("ALERT_DISPATCH_IMMEDIATELY", default=True)
ALERT_TARGET_MAX_PER_WINDOW = env.int("ALERT_TARGET_MAX_PER_WINDOW", default=10)
ALERT_TARGET_WINDOW_MINUTES = env.int("ALERT_TARGET_WINDOW_MINUTES", default=10)
# Alerts of one source raised within this wait go out as one grouped notification (0: none).
ALERT_GROUP_WAIT_SECONDS = env.int("ALERT_GROUP_WAIT_SECONDS", default=0)
# Where notifications point for "what to do": the runbook index (docs/runbooks.md).
ALERT_RUNBOOK_URL = env.str("ALERT_RUNBOOK_URL", default="docs/runbooks.md")
# "twilio" (a Twilio-compatible API at SMS_PROVIDER_URL) or "console" (log it; local use).
SMS_BACKEND = env.str("SMS_BACKEND", default="twilio" if SMS_PROVIDER_URL else "console")
ALERT_SMS_MIN_SEVERITY = env.str("ALERT_SMS_MIN_SEVERITY", default="critical")

# Outbound requests (config/outbound.py): webhooks, SMS provider, heartbeat, audit witness.
# Loopback, private and other non-public addresses are refused unless this is on (local use,
# tests with a local receiver) or the address is in one of the allowed networks (CIDR list).
OUTBOUND_ALLOW_PRIVATE_ADDRESSES = env.bool("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", default=DEBUG)
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])

# Audit -------------------------------------------------------------------------

BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(VAR_DIR / "backups")))
# Signs audit checkpoints. Never stored in the database; keep it with the other secrets.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="") or (
    _local_secret("audit_signing_key") if DEBUG else ""
)
# Keys used before a rotation, so that old checkpoints still verify (comma-separated).
AUDIT_SIGNING_OLD_KEYS = env.list("AUDIT_SIGNING_OLD_KEYS", default=[])
AUDIT_CHECKPOINT_CRON = env.str("AUDIT_CHECKPOINT_CRON", default="5 * * * *")
AUDIT_VERIFY_CRON = env.str("AUDIT_VERIFY_CRON", default="30 2 * * *")
# Verifications of more events than this, started from the API, run on the worker instead.
AUDIT_VERIFY_SYNC_LIMIT = env.int("AUDIT_VERIFY_SYNC_LIMIT", default=200_000)
# The check audit.verification_recent fails when no full verification passed this recently.
AUDIT_VERIFY_MAX_AGE_HOURS = env.int("AUDIT_VERIFY_MAX_AGE_HOURS", default=26)
# Events anyone can cause at will (bogus tokens, refused logins, denied requests): per client
# address and reason, this many per window are recorded in full; the rest are counted and
# written as one summary event when the window closes.
AUDIT_REPEAT_LIMIT = env.int("AUDIT_REPEAT_LIMIT", default=5)
AUDIT_REPEAT_WINDOW_MINUTES = env.int("AUDIT_REPEAT_WINDOW_MINUTES", default=10)
# ... and across all addresses at most this many per reason and window (rotating addresses).
AUDIT_REPEAT_GLOBAL_LIMIT = env.int("AUDIT_REPEAT_GLOBAL_LIMIT", default=50)
# A copy of each signed checkpoint goes to a witness outside the database host (audit/witness.py):
# a webhook (POST of the checkpoint JSON, signed with the secret) and/or email addresses.
AUDIT_CHECKPOINT_WITNESS_URL = env.str("AUDIT_CHECKPOINT_WITNESS_URL", default="")
AUDIT_CHECKPOINT_WITNESS_SECRET = env.str("AUDIT_CHECKPOINT_WITNESS_SECRET", default="")
AUDIT_CHECKPOINT_WITNESS_EMAIL = env.list("AUDIT_CHECKPOINT_WITNESS_EMAIL", default=[])
AUDIT_CHECKPOINT_WITNESS_MAX_ATTEMPTS = env.int("AUDIT_CHECKPOINT_WITNESS_MAX_ATTEMPTS", default=10)
AUDIT_CHECKPOINT_WITNESS_RETRY_SECONDS = env.int(
    "AUDIT_CHECKPOINT_WITNESS_RETRY_SECONDS", default=60
)
# The check audit.checkpoints_witnessed fails when the witness lags this far behind.
AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS = env.int(
    "AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS", default=3
)
# The check audit.checkpoints_recent fails when events older than this have no signed checkpoint;
# unset: the longest gap between two AUDIT_CHECKPOINT_CRON runs plus one hour (2 for hourly).
AUDIT_CHECKPOINT_MAX_AGE_HOURS = env.int("AUDIT_CHECKPOINT_MAX_AGE_HOURS", default=None)
# `manage.py flush` may wipe the audit trail only where this is on (test databases).
AUDIT_ALLOW_FLUSH = env.bool("AUDIT_ALLOW_FLUSH", default=False)

# Row history's "revert" writes a model without its service and without an audit event;
# changes go through the services and the audited admin forms instead.
SIMPLE_HISTORY_REVERT_DISABLED = True

# Health endpoints --------------------------------------------------------------

# /health/live and /health/ready (integrity/health.py, docs/health.md). A stale scheduler
# heartbeat is a warning ("degraded", 200) unless this is on: taking every web instance out of
# the load balancer does not bring a dead worker back, it only turns that into a full outage.
HEALTH_READY_REQUIRE_SCHEDULER = env.bool("HEALTH_READY_REQUIRE_SCHEDULER", default=False)
# Probes and load balancers speak plain HTTP to the instance: never redirect them to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
# Uploads, static files (WhiteNoise's manifest storage, see STATIC_MANIFEST) and where backups
# go; readiness checks the backups location takes a file.
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    "backups": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # A backup is as secret as the database: owner only (BACKUP_S3_BUCKET: see Backups).
        "OPTIONS": {
            "location": BACKUP_DIR,
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
}

# Backups (docs/backups.md) ------------------------------------------------------

# Backup plus verification daily at 03:00, a restore drill weekly (Sunday 04:00), pruning daily.
BACKUP_CRON = env.str("BACKUP_CRON", default="0 3 * * *")
BACKUP_DRILL_CRON = env.str("BACKUP_DRILL_CRON", default="0 4 * * 0")
BACKUP_PRUNE_CRON = env.str("BACKUP_PRUNE_CRON", default="30 5 * * *")
# Recovery point objective: the newest verified backup may be this old (backups.last_backup_recent).
BACKUP_RPO_HOURS = env.int("BACKUP_RPO_HOURS", default=26)
# A restore drill must have passed within this many days (backups.drill_recent).
BACKUP_DRILL_MAX_AGE_DAYS = env.int("BACKUP_DRILL_MAX_AGE_DAYS", default=8)
# Recovery time objective: a drill's restore should take no longer (the Backups dashboard).
BACKUP_RTO_MINUTES = env.int("BACKUP_RTO_MINUTES", default=60)
# Retention: the newest backup of each of the last N days, M ISO weeks and K months.
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", default=7)
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", default=4)
BACKUP_KEEP_MONTHLY = env.int("BACKUP_KEEP_MONTHLY", default=12)
if min(BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY, BACKUP_KEEP_MONTHLY) < 1:
    raise ImproperlyConfigured("BACKUP_KEEP_DAILY, _WEEKLY and _MONTHLY must each be at least 1")
# Where drills make scratch databases (PostgreSQL: a server where the role may CREATE DATABASE);
# empty: beside the running database. And where backups are packed before they are stored.
BACKUP_DRILL_DATABASE_URL = env.str("BACKUP_DRILL_DATABASE_URL", default="")
BACKUP_DRILL_TIMEOUT_SECONDS = env.int("BACKUP_DRILL_TIMEOUT_SECONDS", default=3600)
# A backup or drill RUNNING for longer than this has lost its worker: the daily jobs mark it
# failed and alert (backups/services/sweep.py); a new backup is refused while one younger runs.
BACKUP_STALE_HOURS = env.int("BACKUP_STALE_HOURS", default=12)
BACKUP_WORK_DIR = env.str("BACKUP_WORK_DIR", default="")

# Backups: pgBackRest (docs/backups.md, "pgBackRest") -----------------------------------------

# Empty: by database, SQLite's online backup or pg_dump. "pgbackrest": physical backups of a
# PostgreSQL database through the operator's pgBackRest stanza (configured and created by them).
BACKUP_ENGINE = env.str("BACKUP_ENGINE", default="")
BACKUP_PGBACKREST_STANZA = env.str("BACKUP_PGBACKREST_STANZA", default="")
# pgbackrest.conf (--config); empty: pgBackRest's own default (/etc/pgbackrest/pgbackrest.conf).
BACKUP_PGBACKREST_CONFIG = env.str("BACKUP_PGBACKREST_CONFIG", default="")
BACKUP_PGBACKREST_TYPE = env.str("BACKUP_PGBACKREST_TYPE", default="full")
# The database the stanza's cluster serves, read for the row counts recorded with each set and
# named in drills; empty: the application's database (DATABASE_URL).
BACKUP_PGBACKREST_DATABASE_URL = env.str("BACKUP_PGBACKREST_DATABASE_URL", default="")
if BACKUP_ENGINE not in ("", "pgbackrest"):
    raise ImproperlyConfigured(
        f"BACKUP_ENGINE must be empty (automatic) or pgbackrest, not {BACKUP_ENGINE!r}"
    )
if BACKUP_PGBACKREST_TYPE not in ("full", "diff", "incr"):
    raise ImproperlyConfigured(
        f"BACKUP_PGBACKREST_TYPE must be full, diff or incr, not {BACKUP_PGBACKREST_TYPE!r}"
    )
if BACKUP_ENGINE == "pgbackrest" and not BACKUP_PGBACKREST_STANZA:
    raise ImproperlyConfigured("BACKUP_ENGINE=pgbackrest needs BACKUP_PGBACKREST_STANZA")

# Backups: storage, compression, encryption (backups/storage.py, backups/crypto.py) -----------

# Each backup is compressed with zstd (levels 1-19) before it is stored.
BACKUP_COMPRESSION = env.bool("BACKUP_COMPRESSION", default=True)
BACKUP_COMPRESSION_LEVEL = env.int("BACKUP_COMPRESSION_LEVEL", default=3)
# 32 bytes in standard base64 (`openssl rand -base64 32`): backups are encrypted under it
# (XChaCha20-Poly1305); unset, they are stored unencrypted. A wrong key is refused when used.
BACKUP_ENCRYPTION_KEY = env.str("BACKUP_ENCRYPTION_KEY", default="")
# With a bucket named, backups go to S3-compatible object storage (django-storages) instead of
# BACKUP_DIR. Empty keys: boto3's own chain (AWS_* variables, an instance role).
BACKUP_S3_BUCKET = env.str("BACKUP_S3_BUCKET", default="")
BACKUP_S3_ENDPOINT_URL = env.str("BACKUP_S3_ENDPOINT_URL", default="")
BACKUP_S3_REGION = env.str("BACKUP_S3_REGION", default="")
BACKUP_S3_ACCESS_KEY_ID = env.str("BACKUP_S3_ACCESS_KEY_ID", default="")
BACKUP_S3_SECRET_ACCESS_KEY = env.str("BACKUP_S3_SECRET_ACCESS_KEY", default="")
BACKUP_S3_PREFIX = env.str("BACKUP_S3_PREFIX", default="").strip("/")
# "path" for most S3-compatible servers (MinIO, Ceph, Garage); empty: boto3 decides.
BACKUP_S3_ADDRESSING_STYLE = env.str("BACKUP_S3_ADDRESSING_STYLE", default="")
if BACKUP_S3_ADDRESSING_STYLE not in ("", "auto", "path", "virtual"):
    raise ImproperlyConfigured(
        "BACKUP_S3_ADDRESSING_STYLE must be auto, path or virtual, "
        f"not {BACKUP_S3_ADDRESSING_STYLE!r}"
    )
if BACKUP_S3_BUCKET:
    STORAGES["backups"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BACKUP_S3_BUCKET,
            "endpoint_url": BACKUP_S3_ENDPOINT_URL or None,
            "region_name": BACKUP_S3_REGION or None,
            "access_key": BACKUP_S3_ACCESS_KEY_ID or None,
            "secret_key": BACKUP_S3_SECRET_ACCESS_KEY or None,
            "location": BACKUP_S3_PREFIX,
            "addressing_style": BACKUP_S3_ADDRESSING_STYLE or None,
            # A taken name is never overwritten (backups/storage.py refuses it first).
            "file_overwrite": False,
            # Not a content type guessed from the name (".gz" would add Content-Encoding).
            "object_parameters": {"ContentType": "application/octet-stream"},
        },
    }

# Login lockout (django-axes) ---------------------------------------------------

# A username is locked out from one address after this many failed logins in a row (admin
# login and POST /api/v1/auth/token/); the pair, so that nobody can lock a colleague out from
# elsewhere by guessing. A successful login resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.exceptions.lockout_response"
# The client's address by the project's one rule (behind NUM_PROXIES trusted proxies, from
# X-Forwarded-For, as for throttling and the audit trail). Not django-ipware's settings: that
# package is not installed, and without it django-axes would key every lockout on the proxy's
# address, letting anyone lock a username out for everybody.
AXES_CLIENT_IP_CALLABLE = "config.middleware.client_ip"
AXES_VERBOSE = False  # no banner on every start
# Masked in the request data django-axes keeps with an attempt: second-factor codes too.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp", "code"]
# Counts and answers whatever the request carries; its own failures never become a 500.
AXES_HANDLER = "config.lockout.LockoutHandler"
