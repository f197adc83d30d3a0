"""Roles are Django groups; this is their definition. Migrations write it to the database.

Apps that add permissions later add a migration that calls `sync_roles` again.
"""

from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Permission
from django.db.models import Q

VIEW_FINANCE = [
    "finance.view_account",
    "finance.view_accountbalance",
    "finance.view_fiscalperiod",
    "finance.view_journalentry",
    "finance.view_journalline",
]

VIEW_RECOVERY = [
    "integrity.view_deadletter",
    "integrity.view_deadletterevent",
    "monitoring.view_errorgroup",
    "monitoring.view_errorevent",
]
VIEW_METRICS = [
    "monitoring.view_requestbucket",
    "monitoring.view_taskbucket",
    "monitoring.view_dailystatistic",
    "monitoring.view_threshold",
    "monitoring.view_slowrequest",
    "monitoring.view_slowquery",
    "monitoring.view_databasesnapshot",
    "monitoring.view_dailystorage",
]
# Thresholds are configuration: admins edit them.
CONFIGURE_THRESHOLDS = [
    "monitoring.add_threshold",
    "monitoring.change_threshold",
    "monitoring.delete_threshold",
]
VIEW_ALERTS = ["alerts.view_alert", "alerts.view_alertevent", "alerts.view_delivery"]
OPERATE_ALERTS = [
    "alerts.acknowledge_alert",
    "alerts.resolve_alert",
    "alerts.view_silence",
    "alerts.add_silence",
    "alerts.change_silence",
]
CONFIGURE_ALERTS = [
    f"alerts.{verb}_{model}"
    for model in ("target", "escalationpolicy", "escalationstep", "route")
    for verb in ("view", "add", "change", "delete")
] + ["alerts.view_delivery"]
READ_AUDIT = [
    "audit.view_auditevent",
    "audit.view_checkpoint",
    "audit.view_verification",
]
VIEW_CHECKS = [
    "integrity.view_checkrun",
    "integrity.view_checkresult",
    "integrity.view_finding",
    "integrity.view_findingexplanation",
]
RUN_CHECKS = ["integrity.run_checks", "integrity.explain_finding"]
VIEW_BACKUPS = ["backups.view_backup", "backups.view_restoredrill"]
# Operators take backups and run drills; only admins download one (a whole copy of the books).
OPERATE_BACKUPS = ["backups.run_backup", "backups.drill_backup"]
OPERATE_RECOVERY = [
    "integrity.retry_deadletter",
    "integrity.discard_deadletter",
    "monitoring.change_errorgroup",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "finance_clerk": [
        *VIEW_FINANCE,
        "finance.add_journalentry",
        "finance.change_journalentry",
        "finance.delete_journalentry",
        "finance.submit_journalentry",
    ],
    "finance_approver": [
        *VIEW_FINANCE,
        "finance.approve_journalentry",
        "finance.post_journalentry",
        "finance.reverse_journalentry",
        "finance.close_fiscalperiod",
        # Closing runs the financial checks; approvers see and explain what blocks it.
        *VIEW_CHECKS,
        *RUN_CHECKS,
    ],
    "auditor": [
        *VIEW_CHECKS,
        *VIEW_FINANCE,
        *VIEW_RECOVERY,
        *VIEW_BACKUPS,
        *VIEW_METRICS,
        *READ_AUDIT,
        "audit.export_auditevent",
        "audit.verify_auditevent",
        "finance.view_entrysequence",
    ],
    "operator": [
        *VIEW_FINANCE,
        *VIEW_RECOVERY,
        *VIEW_BACKUPS,
        *VIEW_METRICS,
        *OPERATE_BACKUPS,
        *READ_AUDIT,
        "audit.verify_auditevent",
        *OPERATE_RECOVERY,
        *VIEW_ALERTS,
        *OPERATE_ALERTS,
        "integrity.view_idempotencykey",
        *VIEW_CHECKS,
        *RUN_CHECKS,
    ],
    "admin": [
        *VIEW_FINANCE,
        *VIEW_RECOVERY,
        *VIEW_METRICS,
        *VIEW_BACKUPS,
        *OPERATE_BACKUPS,
        "backups.download_backup",
        *VIEW_METRICS,
        *CONFIGURE_THRESHOLDS,
        *READ_AUDIT,
        "audit.verify_auditevent",
        *OPERATE_RECOVERY,
        *VIEW_ALERTS,
        *OPERATE_ALERTS,
        *CONFIGURE_ALERTS,
        *VIEW_CHECKS,
        *RUN_CHECKS,
        "finance.add_account",
        "finance.change_account",
        "finance.delete_account",
        "finance.add_fiscalperiod",
        "finance.change_fiscalperiod",
        "finance.close_fiscalperiod",
        "finance.reopen_fiscalperiod",
        "finance.view_entrysequence",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "config.view_apitoken",
        "config.delete_apitoken",
        "integrity.view_idempotencykey",
        "django_q.view_schedule",
        "django_q.change_schedule",
        "django_q.view_task",
        "django_q.view_success",
        "django_q.view_failure",
        # Login lockouts: see who is locked out, and unlock by deleting the attempt.
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "axes.view_accesslog",
        "axes.view_accessfailurelog",
    ],
}

ROLE_NAMES = tuple(ROLE_PERMISSIONS)


# Permissions a role once had and must lose (sync_roles only ever adds).
ROLE_REVOKED: dict[str, list[str]] = {
    # The alerting issue: alerts are for operators and admins only.
    "auditor": ["alerts.view_alert", "alerts.view_alertevent", "alerts.view_delivery"],
    # A group's permissions are granted directly: roles are edited in code, not in the admin.
    "admin": ["auth.change_group"],
}


def held_permissions(user: Any) -> set[str]:
    """Every permission `user` holds through groups or directly, active or not ("app.codename";
    all of them for a superuser). Not Django's get_all_permissions, which is empty for an
    inactive user: activating one must not grant what the activator lacks."""
    perms = Permission.objects.all()
    if not user.is_superuser:
        perms = perms.filter(Q(user=user) | Q(group__user=user))
    pairs = perms.values_list("content_type__app_label", "codename").distinct()
    return {f"{app_label}.{codename}" for app_label, codename in pairs}


def revoke_roles(apps: Apps, schema_editor: Any) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_REVOKED.items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


def sync_roles(apps: Apps, schema_editor: Any) -> None:
    """Create the groups and grant their permissions (idempotent; only ever adds)."""
    for app_config in global_apps.get_app_configs():
        # create_permissions skips apps whose models_module is unset, which it is while
        # migrations run; set it for the call and put the real value back.
        saved = app_config.models_module
        app_config.models_module = saved or True  # type: ignore[assignment]  # read for truth
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = saved
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            found = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if found is not None:  # an app not migrated yet grants it in its own migration
                group.permissions.add(found)
