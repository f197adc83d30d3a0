"""The role matrix: what every role may do on every API endpoint, admin page and action, other
URL and management command. One table, read by people (docs/security.md, written from it by
`manage.py role_matrix`) and by the suite (tests/config/test_role_matrix.py walks every cell
against the real views and fails on a cell that differs, and on an endpoint, page, action or
command that has no row). Roles are granted in config/roles.py; this is what they must add up
to. Object-level rules (maker-checker, ownership) are named on their rows and tested where the
rule lives.
"""

from dataclasses import dataclass, field

CLERK = "finance_clerk"
APPROVER = "finance_approver"
AUDITOR = "auditor"
OPERATOR = "operator"
ADMIN = "admin"
ANONYMOUS = "anonymous"
ROLES = (CLERK, APPROVER, AUDITOR, OPERATOR, ADMIN)
COLUMNS = (*ROLES, ANONYMOUS)


def R(*roles: str) -> frozenset[str]:
    return frozenset(roles)


STAFF = R(*ROLES)
EVERYONE = R(*COLUMNS)
NOBODY = R()

# Object-level rules, named on the rows they apply to.
OWN_DRAFT = "a clerk changes only their own drafts"
MAKER_CHECKER = "never one's own entry (maker-checker)"
OWN_ONLY = "each user sees only their own"
BATCH = "finance.record_journalentry, which no role has: a superuser grants it to an integration"
DOCS = "everyone when API_DOCS_PUBLIC is on (off by default with DEBUG off)"
OWN_EVENTS = "without audit.view_auditevent, only one's own events"


@dataclass(frozen=True)
class Endpoint:
    """An HTTP method and path (as the OpenAPI schema spells it, or a URL route) and who may."""

    method: str
    path: str
    roles: frozenset[str]
    rule: str = ""


@dataclass(frozen=True)
class AdminModel:
    """A model's admin pages: the list and the object pages (view), the add form, saving a
    change, deleting, and each action of the list."""

    model: str
    view: frozenset[str]
    add: frozenset[str]
    change: frozenset[str]
    delete: frozenset[str]
    actions: dict[str, frozenset[str]] = field(default_factory=dict)
    rule: str = ""


@dataclass(frozen=True)
class AdminView:
    """A page of the admin beyond a model's standard ones, by URL name (and its method: pages
    that act take a POST)."""

    name: str
    roles: frozenset[str]
    rule: str = ""
    method: str = "GET"


@dataclass(frozen=True)
class Command:
    """A management command. Commands run on the server with its credentials, outside any
    login: `roles` says whose job it is, and server access is given to those people only."""

    name: str
    roles: frozenset[str]
    what: str


API: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/docs/", STAFF, DOCS),
    Endpoint("GET", "/api/redoc/", STAFF, DOCS),
    Endpoint("GET", "/api/schema/", STAFF, DOCS),
    Endpoint("GET", "/api/v1/accounts/", STAFF),
    Endpoint("POST", "/api/v1/accounts/", R(ADMIN)),
    Endpoint("DELETE", "/api/v1/accounts/{pk}/", R(ADMIN)),
    Endpoint("GET", "/api/v1/accounts/{pk}/", STAFF),
    Endpoint("PATCH", "/api/v1/accounts/{pk}/", R(ADMIN)),
    Endpoint("GET", "/api/v1/accounts/{pk}/balance/", STAFF),
    Endpoint("GET", "/api/v1/accounts/{pk}/statement/", STAFF),
    Endpoint("GET", "/api/v1/alerts/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/alerts/{pk}/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/alerts/{pk}/acknowledge/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/alerts/{pk}/resolve/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/alerts/{pk}/silence/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/audit/checkpoints/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/audit/checkpoints/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/audit/events/", STAFF, OWN_EVENTS),
    Endpoint("GET", "/api/v1/audit/events/{pk}/", STAFF, OWN_EVENTS),
    Endpoint("GET", "/api/v1/audit/export/", R(AUDITOR)),
    Endpoint(
        "GET",
        "/api/v1/audit/objects/{object_type}/{object_id}/timeline/",
        R(AUDITOR, OPERATOR, ADMIN),
    ),
    Endpoint("GET", "/api/v1/audit/status/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/audit/users/{user_id}/activity/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/audit/verifications/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/audit/verifications/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/audit/verifications/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/auth/token/", EVERYONE),
    Endpoint("GET", "/api/v1/auth/tokens/", STAFF, OWN_ONLY),
    Endpoint("DELETE", "/api/v1/auth/tokens/{pk}/", STAFF, OWN_ONLY),
    Endpoint("GET", "/api/v1/auth/sessions/", STAFF, OWN_ONLY),
    Endpoint("DELETE", "/api/v1/auth/sessions/{pk}/", STAFF, OWN_ONLY),
    Endpoint("POST", "/api/v1/auth/sessions/end-others/", STAFF, OWN_ONLY),
    Endpoint("GET", "/api/v1/backups/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/backups/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/backups/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/backups/{pk}/download/", R(ADMIN)),
    Endpoint("POST", "/api/v1/backups/{pk}/drill/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/backups/{pk}/verify/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/balances/", STAFF),
    Endpoint("GET", "/api/v1/check-findings/", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/check-findings/{pk}/", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/check-findings/{pk}/explain/", R(APPROVER, OPERATOR, ADMIN)),
    Endpoint(
        "POST", "/api/v1/check-findings/{pk}/withdraw-explanation/", R(APPROVER, OPERATOR, ADMIN)
    ),
    Endpoint("GET", "/api/v1/check-runs/", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/check-runs/", R(APPROVER, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/check-runs/{pk}/", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/checks/", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/checks/{name}/trend/", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/dead-letters/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/dead-letters/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/dead-letters/{pk}/discard/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/dead-letters/{pk}/retry/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/drills/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/drills/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/entries/", STAFF),
    Endpoint("POST", "/api/v1/entries/", R(CLERK)),
    Endpoint("POST", "/api/v1/entries/batch/", NOBODY, BATCH),
    Endpoint("DELETE", "/api/v1/entries/{pk}/", R(CLERK), OWN_DRAFT),
    Endpoint("GET", "/api/v1/entries/{pk}/", STAFF),
    Endpoint("PATCH", "/api/v1/entries/{pk}/", R(CLERK), OWN_DRAFT),
    Endpoint("POST", "/api/v1/entries/{pk}/approve/", R(APPROVER), MAKER_CHECKER),
    Endpoint("POST", "/api/v1/entries/{pk}/post/", R(APPROVER), MAKER_CHECKER),
    Endpoint("POST", "/api/v1/entries/{pk}/reject/", R(APPROVER), MAKER_CHECKER),
    Endpoint("POST", "/api/v1/entries/{pk}/reverse/", R(APPROVER)),
    Endpoint("POST", "/api/v1/entries/{pk}/submit/", R(CLERK), OWN_DRAFT),
    Endpoint("GET", "/api/v1/metrics/daily/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/requests/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/slow-queries/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/slow-queries/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/slow-requests/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/slow-requests/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/snapshots/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/snapshots/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/storage/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/storage/trend/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/tasks/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/thresholds/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/metrics/thresholds/{pk}/", R(AUDITOR, OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/periods/", STAFF),
    Endpoint("POST", "/api/v1/periods/", R(ADMIN)),
    Endpoint("GET", "/api/v1/periods/{pk}/", STAFF),
    Endpoint("POST", "/api/v1/periods/{pk}/close/", R(APPROVER, ADMIN)),
    Endpoint("POST", "/api/v1/periods/{pk}/reopen/", R(ADMIN)),
    Endpoint("GET", "/api/v1/silences/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/silences/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/silences/{pk}/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/silences/{pk}/approve/", R(OPERATOR, ADMIN)),
    Endpoint("POST", "/api/v1/silences/{pk}/expire/", R(OPERATOR, ADMIN)),
    Endpoint("GET", "/api/v1/trial-balance/", STAFF),
)

ADMIN_MODELS: tuple[AdminModel, ...] = (
    AdminModel(
        "alerts.alert",
        view=R(OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
        actions={
            "acknowledge": R(OPERATOR, ADMIN),
            "resolve": R(OPERATOR, ADMIN),
            "silence_hour": R(OPERATOR, ADMIN),
        },
    ),
    AdminModel(
        "alerts.escalationpolicy", view=R(ADMIN), add=R(ADMIN), change=R(ADMIN), delete=R(ADMIN)
    ),
    AdminModel("alerts.route", view=R(ADMIN), add=R(ADMIN), change=R(ADMIN), delete=R(ADMIN)),
    AdminModel(
        "alerts.silence",
        view=R(OPERATOR, ADMIN),
        add=R(OPERATOR, ADMIN),
        change=R(OPERATOR, ADMIN),
        delete=NOBODY,
        actions={"approve": R(OPERATOR, ADMIN), "expire": R(OPERATOR, ADMIN)},
    ),
    AdminModel("alerts.target", view=R(ADMIN), add=R(ADMIN), change=R(ADMIN), delete=R(ADMIN)),
    AdminModel(
        "audit.auditevent",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "audit.checkpoint",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "audit.verification",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel("auth.group", view=R(ADMIN), add=NOBODY, change=NOBODY, delete=NOBODY),
    AdminModel(
        "auth.user",
        view=R(ADMIN),
        add=R(ADMIN),
        change=R(ADMIN),
        delete=NOBODY,
        actions={"reset_second_factor": R(ADMIN)},
        rule="never a superuser, nor a user holding what the admin lacks",
    ),
    AdminModel(
        "axes.accessattempt",
        view=R(ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=R(ADMIN),
        actions={"cleanup_expired_attempts": R(ADMIN)},
    ),
    AdminModel("axes.accessfailurelog", view=R(ADMIN), add=NOBODY, change=NOBODY, delete=NOBODY),
    AdminModel("axes.accesslog", view=R(ADMIN), add=NOBODY, change=NOBODY, delete=NOBODY),
    AdminModel(
        "backups.backup",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
        actions={"drill_backups": R(OPERATOR, ADMIN), "verify_backups": R(OPERATOR, ADMIN)},
    ),
    AdminModel(
        "backups.restoredrill",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "config.apitoken",
        view=R(ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
        actions={"revoke": R(ADMIN)},
    ),
    AdminModel("django_q.failure", view=R(ADMIN), add=NOBODY, change=NOBODY, delete=NOBODY),
    AdminModel("django_q.ormq", view=NOBODY, add=NOBODY, change=NOBODY, delete=NOBODY),
    AdminModel(
        "django_q.schedule",
        view=R(ADMIN),
        add=NOBODY,
        change=R(ADMIN),
        delete=NOBODY,
        actions={"pause": R(ADMIN), "resume": R(ADMIN), "run_now": R(ADMIN)},
    ),
    AdminModel("django_q.success", view=R(ADMIN), add=NOBODY, change=NOBODY, delete=NOBODY),
    AdminModel("finance.account", view=STAFF, add=R(ADMIN), change=R(ADMIN), delete=R(ADMIN)),
    AdminModel(
        "finance.fiscalperiod",
        view=STAFF,
        add=R(ADMIN),
        change=R(ADMIN),
        delete=NOBODY,
        actions={"close_periods": R(APPROVER, ADMIN), "reopen_periods": R(ADMIN)},
    ),
    AdminModel(
        "finance.journalentry",
        view=STAFF,
        add=R(CLERK),
        change=R(CLERK),
        delete=R(CLERK),
        actions={
            "submit_entries": R(CLERK),
            "approve_entries": R(APPROVER),
            "post_entries": R(APPROVER),
            "reject_entries": R(APPROVER),
            "reverse_entries": R(APPROVER),
        },
    ),
    AdminModel(
        "integrity.checkrun",
        view=R(APPROVER, AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "integrity.deadletter",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
        actions={"discard_letters": R(OPERATOR, ADMIN), "retry_letters": R(OPERATOR, ADMIN)},
    ),
    AdminModel(
        "integrity.finding",
        view=R(APPROVER, AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "integrity.idempotencykey",
        view=R(OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.dailystatistic",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.dailystorage",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.databasesnapshot",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.errorevent",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.errorgroup",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
        actions={
            "ignore_groups": R(OPERATOR, ADMIN),
            "reopen_groups": R(OPERATOR, ADMIN),
            "resolve_groups": R(OPERATOR, ADMIN),
        },
    ),
    AdminModel(
        "monitoring.requestbucket",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.slowquery",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.slowrequest",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.taskbucket",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=NOBODY,
        change=NOBODY,
        delete=NOBODY,
    ),
    AdminModel(
        "monitoring.threshold",
        view=R(AUDITOR, OPERATOR, ADMIN),
        add=R(ADMIN),
        change=R(ADMIN),
        delete=R(ADMIN),
    ),
)

ADMIN_VIEWS: tuple[AdminView, ...] = (
    AdminView("login", EVERYONE),
    AdminView("logout", EVERYONE),
    AdminView("index", STAFF),
    AdminView("password_change", STAFF, "one's own password"),
    AdminView("password_change_done", STAFF),
    AdminView("my_sessions", STAFF, OWN_ONLY),
    AdminView("my_session_end", STAFF, OWN_ONLY, method="POST"),
    AdminView("my_sessions_end_others", STAFF, OWN_ONLY, method="POST"),
    AdminView(
        "auth_user_password_change",
        R(ADMIN),
        "another user's password: never a superuser's, nor one holding what the admin lacks",
    ),
    AdminView("jsi18n", STAFF),
    AdminView("autocomplete", STAFF, "only models the user may view"),
    AdminView("view_on_site", STAFF),
    AdminView("otp_verify", STAFF, "after the password, before the second factor"),
    AdminView("otp_enrol", STAFF, "after the password, before the second factor"),
    AdminView("otp_recovery_codes", STAFF, "one's own recovery codes"),
    AdminView("integrity_checkrun_run", R(APPROVER, OPERATOR, ADMIN), method="POST"),
    AdminView("integrity_checkrun_trend", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    AdminView("integrity_finding_explain", R(APPROVER, OPERATOR, ADMIN)),
    AdminView("integrity_finding_withdraw", R(APPROVER, OPERATOR, ADMIN)),
    AdminView("audit_auditevent_verify", R(AUDITOR, OPERATOR, ADMIN), method="POST"),
    AdminView("backups_backup_take", R(OPERATOR, ADMIN), method="POST"),
    AdminView("backups_backup_download", R(ADMIN)),
    # alerts: the Alerts dashboard (alerts/dashboard.py) and its actions.
    AdminView("dashboard_alerts", R(OPERATOR, ADMIN)),
    AdminView("dashboard_alerts_acknowledge", R(OPERATOR, ADMIN), method="POST"),
    AdminView("dashboard_alerts_resolve", R(OPERATOR, ADMIN), method="POST"),
    AdminView("dashboard_alerts_silence", R(OPERATOR, ADMIN), method="POST"),
    # finance: the Financial dashboard (finance/admin/dashboard.py)
    AdminView("dashboard_financial", STAFF),
    AdminView("dashboard_financial_approve", R(APPROVER), MAKER_CHECKER, method="POST"),
    AdminView("dashboard_financial_reject", R(APPROVER), method="POST"),
    AdminView(
        "dashboard_financial_close", R(APPROVER, ADMIN), "the financial checks run first", "POST"
    ),
    # monitoring: the Performance dashboard (read-only, no actions)
    AdminView("dashboard_performance", R(AUDITOR, OPERATOR, ADMIN)),
    # integrity: the Integrity dashboard (integrity/admin/dashboard.py)
    AdminView("dashboard_integrity", R(APPROVER, AUDITOR, OPERATOR, ADMIN)),
    AdminView("dashboard_integrity_run", R(APPROVER, OPERATOR, ADMIN), method="POST"),
    AdminView("dashboard_integrity_retry", R(OPERATOR, ADMIN), method="POST"),
    # audit: the Audit dashboard (audit/dashboard.py)
    AdminView("dashboard_audit", R(AUDITOR, OPERATOR, ADMIN)),
    AdminView("dashboard_audit_timeline", R(AUDITOR, OPERATOR, ADMIN)),
    AdminView("dashboard_audit_verify", R(AUDITOR, OPERATOR, ADMIN), method="POST"),
    AdminView("dashboard_audit_export", R(AUDITOR), method="POST"),
    # backups: the Backups dashboard (backups/dashboard.py) and its actions.
    AdminView("dashboard_backups", R(AUDITOR, OPERATOR, ADMIN)),
    AdminView("dashboard_backups_backup", R(OPERATOR, ADMIN), method="POST"),
    AdminView(
        "dashboard_backups_drill",
        R(OPERATOR, ADMIN),
        "the newest good backup, or the one named",
        method="POST",
    ),
)

# URLs outside the API and the admin, by route.
OTHER: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health/live/?", EVERYONE),
    Endpoint("GET", "/health/ready/?", EVERYONE),
    Endpoint("GET", "/metrics", EVERYONE, "from an allowed network or with the scrape token"),
    Endpoint("GET", "/alerts/ack/<str:token>/", EVERYONE, "whoever holds the signed link"),
    Endpoint("GET", "/alerts/heartbeat/", EVERYONE),
    Endpoint("POST", "/csp-report/", EVERYONE, "browsers' reports, bounded in size and in number"),
)

COMMANDS: tuple[Command, ...] = (
    Command("migrate", R(ADMIN), "schema changes, as the tables' owner"),
    Command("grant_app_role", R(ADMIN), "grants the application's database role"),
    Command("flush", NOBODY, "refused unless AUDIT_ALLOW_FLUSH (test databases)"),
    Command("create_api_token", R(ADMIN), "issues a token for a named user"),
    Command("seed_demo", R(ADMIN), "a demo company, for local use"),
    Command("sync_schedules", R(ADMIN), "writes the declared schedules"),
    Command("run_checks", R(OPERATOR, ADMIN), "runs integrity and financial checks"),
    Command("deadletters", R(OPERATOR, ADMIN), "lists, retries and discards dead letters"),
    Command("audit_checkpoint", R(OPERATOR, ADMIN), "signs a checkpoint of the chain"),
    Command("verify_audit_chain", R(AUDITOR, OPERATOR, ADMIN), "verifies the chain"),
    Command("export_audit", R(AUDITOR), "exports the audit trail"),
    Command("backup", R(OPERATOR, ADMIN), "takes a backup"),
    Command("verify_backup", R(OPERATOR, ADMIN), "checksums a backup and drills it"),
    Command("prune_backups", R(OPERATOR, ADMIN), "applies retention"),
    Command("restore", R(ADMIN), "disaster recovery into a target database"),
    Command("metrics_snapshot", R(OPERATOR, ADMIN), "stores a database and host snapshot"),
    Command("daily_stats", R(OPERATOR, ADMIN), "stores a day's statistics"),
    Command("send_test_alert", R(OPERATOR, ADMIN), "sends a test alert end to end"),
    Command("role_matrix", STAFF, "prints this matrix"),
    Command("reset_otp", R(ADMIN), "resets a user's second factor (superusers too)"),
)
