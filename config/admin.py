from typing import TYPE_CHECKING, Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import router, transaction
from django.urls import path
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_q.admin import FailAdmin, TaskAdmin
from django_q.models import Failure, Success

from config import admin_sessions, dashboards
from config.admin_helpers import AuditedAdminMixin, audit_state
from config.events import diff, record
from config.models import ApiToken
from config.roles import ROLE_NAMES, held_permissions
from config.sessions import user_sessions_end_others
from config.throttling import admin_login_throttled
from config.tokens import api_token_revoke, api_tokens_revoke_for_user
from config.twofactor import views as twofactor_views
from config.twofactor.services import OtpResetRefused, otp_devices_reset

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]  # what NoResubmitMixin is mixed into
else:
    _ModelAdmin = object


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owner (API or `manage.py create_api_token`); here they are
    seen and revoked. The secret itself is never stored, so it cannot be shown."""

    list_display = [
        "name",
        "prefix",
        "user",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays as a record

    def has_revoke_permission(self, request):
        return request.user.has_perm("config.delete_apitoken")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


# Users and groups have no services: the admin writes them directly, so their admins are the
# stock ones plus the audit trail (config.admin_helpers), confined so that nobody grants more
# than they hold. django-q2's schedules are in integrity/admin/schedules.py.

User = get_user_model()

# Only a superuser grants these: each can hand out any permission at all.
PRIVILEGE_FIELDS = ("is_superuser", "user_permissions")


class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    """`admin` manages users and their roles. Someone who is not a superuser:

    - never sees `is_superuser` or direct permissions as fields (shown read-only);
    - assigns the roles (config/roles.py) and groups whose permissions they hold themselves,
      never a group a superuser made with more;
    - changes only users they could have made: never a superuser, never someone with a group
      they cannot assign or a direct permission they lack (password change included).
    """

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            fields += PRIVILEGE_FIELDS
            if obj.pk == request.user.pk:
                # Nobody grants themselves a role: an admin who made themselves approver (or
                # auditor) would hold both sides of maker-checker. Another admin does it.
                fields.append("groups")
        return fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and not obj.is_active:
            # A deactivated user's tokens must not work again when the account is reactivated.
            api_tokens_revoke_for_user(user=obj, reason="deactivated")

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or request.user.is_superuser:
            return True
        if obj.is_superuser:
            return False
        assignable = set(assignable_groups(request.user).values_list("pk", flat=True))
        if not set(obj.groups.values_list("pk", flat=True)) <= assignable:
            return False
        direct = obj.user_permissions.values_list("content_type__app_label", "codename")
        return {f"{a}.{c}" for a, c in direct} <= held_permissions(request.user)

    actions = ["reset_second_factor"]

    @admin.action(
        description="Reset two-factor devices (they set up again at next login)",
        permissions=["change"],
    )
    def reset_second_factor(self, request, queryset):
        """Only users this admin may change (the rules above), never a superuser's unless a
        superuser asks, never one's own: refused as a whole, before anything is reset."""
        users = list(queryset.order_by("pk"))
        refused = [
            u
            for u in users
            if u.pk == request.user.pk
            or not self.has_change_permission(request, u)
            or (u.is_superuser and not request.user.is_superuser)
        ]
        if refused:
            names = ", ".join(u.get_username() for u in refused)
            self.message_user(request, f"Not allowed to reset: {names}.", messages.ERROR)
            return
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                for user in users:
                    otp_devices_reset(target=user, actor=request.user, reason="admin action")
        except OtpResetRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Reset the second factor of {len(users)} user(s).")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = assignable_groups(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def user_change_password(self, request, id, form_url=""):
        """The password form saves outside save_model: recorded here, in one transaction
        with the change (the trail keeps only that the password changed)."""
        with transaction.atomic(using=router.db_for_write(self.model)):
            stored = self.get_object(request, unquote(id))
            before = audit_state(stored) if stored is not None else None
            response = super().user_change_password(request, id, form_url)
            if stored is not None and before is not None and request.method == "POST":
                stored.refresh_from_db()
                changes = diff(before, audit_state(stored))
                if changes:
                    record(
                        action="admin.changed",
                        obj=stored,
                        changes=changes,
                        metadata={"form": "password"},
                    )
                if not stored.has_usable_password():
                    # "Disable password-based authentication" sets no password, so Django's
                    # password_changed hook (config/passwords.py) does not run for it.
                    api_tokens_revoke_for_user(user=stored, reason="password_unset")
                    user_sessions_end_others(user=stored, keep_digest=None, reason="password_unset")
        return response


def assignable_groups(user):
    """The groups `user` may hand out: the roles, if they may change users, and any group whose
    every permission they hold (every group, for a superuser)."""
    held = held_permissions(user)
    groups = Group.objects.prefetch_related("permissions__content_type").order_by("name")
    allowed = [
        g.pk
        for g in groups
        if (g.name in ROLE_NAMES and "auth.change_user" in held)
        or {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} <= held
    ]
    return Group.objects.filter(pk__in=allowed).order_by("name")


class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    """Roles are groups defined in code (config/roles.py, written by migrations): only a
    superuser edits a group, since a group's permissions are permissions granted directly."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class AuditedAccessAttemptAdmin(AuditedAdminMixin, AccessAttemptAdmin):
    """Deleting an attempt lifts a lockout: recorded as admin.deleted, with its username."""

    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        # django-axes' own action declares no permission: view-only staff would get it.
        return super().cleanup_expired_attempts(request, queryset)


class NoResubmitMixin(_ModelAdmin):
    """django-q2's "resubmit" action declares no permission, so view-only staff would get it,
    and it re-runs work outside the audit trail. Failed tasks become dead letters, which are
    retried through their own audited service."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("resubmit_task", None)
        return actions


class QuietFailAdmin(NoResubmitMixin, FailAdmin):
    pass


class QuietTaskAdmin(NoResubmitMixin, TaskAdmin):
    pass


# Devices change only through the audited services (enrolment, recovery codes, reset): not
# django-otp's own admins, which would let a superuser's slip hand a user a known key.
for device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)

for model, model_admin in (
    (User, AuditedUserAdmin),
    (Group, AuditedGroupAdmin),
    (AccessAttempt, AuditedAccessAttemptAdmin),
    (Failure, QuietFailAdmin),
    (Success, QuietTaskAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


_password_change = admin.site.password_change


def _audited_password_change(request, extra_context=None):
    """A user changing their own password (/admin/password_change/): one transaction with its
    event; the trail keeps only that it changed."""
    with transaction.atomic(using=router.db_for_write(User)):
        response = _password_change(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            record(action="auth.password_changed", obj=request.user, actor=request.user)
    return response


_login = admin.site.login


def _throttled_login(request, extra_context=None):
    """The login POST shares the token endpoint's rate per address (config/throttling.py)."""
    return admin_login_throttled(request) or _login(request, extra_context)


# The default site keeps its URLs and templates; only these views of it are wrapped.
admin.site.password_change = _audited_password_change  # type: ignore[method-assign]


_get_urls = admin.site.get_urls


def _get_urls_with_second_factor():
    """The second factor's pages under the admin's own path (config/twofactor/views.py)."""
    view = admin.site.admin_view
    return [
        path("2fa/verify/", view(twofactor_views.verify), name="otp_verify"),
        path("2fa/enrol/", view(twofactor_views.enrol), name="otp_enrol"),
        path(
            "2fa/recovery-codes/", view(twofactor_views.recovery_codes), name="otp_recovery_codes"
        ),
        *_get_urls(),
    ]


admin.site.get_urls = _get_urls_with_second_factor  # type: ignore[method-assign]
admin.site.login = _throttled_login  # type: ignore[method-assign]

# The session list (admin:my_sessions), linked from the user tools (templates/admin/base_site.html).
admin_sessions.install(admin.site)

# The operations console: each app's dashboard page under dashboards/<key>/, and the Overview's
# tiles on the index (config/dashboards.py, templates/admin/index.html).
dashboards.install(admin.site)
_index = admin.site.index


def _overview_index(request, extra_context=None):
    context = {
        **dashboards.nav_context(request, current=""),
        "overview_tiles": dashboards.overview(request),
        **(extra_context or {}),
    }
    return _index(request, extra_context=context)


admin.site.index = _overview_index  # type: ignore[method-assign]
