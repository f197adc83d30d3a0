"""Capture in the admin: adds, changes (inline and many-to-many included) and deletions record
their before and after, admin writes through services are recorded once, passwords and webhook
URLs never appear in clear, and nothing in the admin goes around the trail."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from alerts.models import EscalationPolicy, EscalationStep, Target
from finance.models import FiscalPeriod
from tests.alerts.factories import EscalationPolicyFactory, RouteFactory, TargetFactory
from tests.audit.helpers import IP, logged_in, stored_text
from tests.factories import PASSWORD

pytestmark = pytest.mark.usefixtures("only_catalogued_actions")

User = get_user_model()


def target_form(**values):
    return {
        "name": "ops",
        "channel": "email",
        "address": "ops@example.com",
        "webhook_format": "json",
        "is_active": "on",
        **values,
    }


def test_target_admin_add_change_and_delete_record_before_and_after(admin_user, trail):
    client = logged_in(admin_user)
    trail.mark()
    assert client.post("/admin/alerts/target/add/", target_form()).status_code == 302
    target = Target.objects.get(name="ops")
    changed = client.post(
        f"/admin/alerts/target/{target.pk}/change/", target_form(address="ops2@example.com")
    )
    assert changed.status_code == 302
    client.post(
        f"/admin/alerts/target/{target.pk}/change/", target_form(address="ops2@example.com")
    )
    spare = TargetFactory(name="spare", channel="sms", address="+15550100")
    deleted = client.post(
        "/admin/alerts/target/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [target.pk, spare.pk]},
    )
    assert deleted.status_code == 302 and not Target.objects.exists()

    # Saving without a change records nothing.
    assert trail.actions() == ["admin.added", "admin.changed", "admin.deleted", "admin.deleted"]
    added, change, *gone = trail.events()
    assert (added.object_type, added.object_id, added.actor_id) == (
        "alerts.target",
        str(target.pk),
        admin_user.pk,
    )
    assert added.changes["address"] == [None, "ops@example.com"]
    assert change.changes == {"address": ["ops@example.com", "ops2@example.com"]}
    assert {e.object_id for e in gone} == {str(target.pk), str(spare.pk)}
    assert {e.changes["name"][0] for e in gone} == {"ops", "spare"}


def test_a_webhook_url_is_kept_as_a_fingerprint_not_in_clear(admin_user, trail):
    client = logged_in(admin_user)
    secret_url = "https://hooks.slack.com/services/T000/B000/s3cr3tT0k3n"
    form = target_form(channel="webhook", address=secret_url, webhook_format="slack")
    assert client.post("/admin/alerts/target/add/", form).status_code == 302
    target = Target.objects.get(name="ops")
    form["address"] = secret_url + "x"
    assert client.post(f"/admin/alerts/target/{target.pk}/change/", form).status_code == 302
    assert "s3cr3tT0k3n" not in stored_text()
    before, after = trail.one("admin.changed").changes["address"]
    assert before.startswith("[webhook URL sha256:") and before != after  # the change shows


def test_policy_admin_records_the_policy_and_its_inline_steps(admin_user, trail):
    oncall = TargetFactory(name="on-call", channel="email", address="oncall@example.com")
    data = {
        "name": "finance",
        "ack_timeout_minutes": "30",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "0",
        "steps-0-delay_minutes": "5",
        "steps-0-targets": [str(oncall.pk)],
    }
    client = logged_in(admin_user)
    trail.mark()
    response = client.post("/admin/alerts/escalationpolicy/add/", data)
    assert response.status_code == 302, response.content
    policy = EscalationPolicy.objects.get()
    step = EscalationStep.objects.get()
    assert trail.actions() == ["admin.added", "admin.added"]
    parent, child = trail.events()
    assert parent.object_type == "alerts.escalationpolicy" and parent.object_id == str(policy.pk)
    assert child.object_type == "alerts.escalationstep" and child.object_id == str(step.pk)
    assert child.changes["targets"] == [None, [oncall.pk]]
    assert child.metadata == {
        "parent_type": "alerts.escalationpolicy",
        "parent_id": policy.pk,
        "m2m": {"targets": {"added": [str(oncall)], "removed": []}},
    }


def test_route_edited_in_the_changelist_is_recorded(admin_user, trail):
    route = RouteFactory(name="all", policy=EscalationPolicyFactory(name="default"), position=10)
    client = logged_in(admin_user)
    trail.mark()
    # "form-0-is_active" left out: the box is unticked.
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(route.pk),
        "form-0-position": "5",
        "_save": "Save",
    }
    assert client.post("/admin/alerts/route/", data).status_code == 302
    changed = trail.one("admin.changed")
    assert changed.object_id == str(route.pk)
    assert changed.changes == {"is_active": [True, False], "position": [10, 5]}


def user_form(user, **values):
    joined = timezone.localtime(user.date_joined)
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": joined.date().isoformat(),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "user_permissions": [],
        **values,
    }


def test_a_users_group_change_in_the_admin_is_recorded(admin_user, clerk, trail):
    # The admin form keeps whole seconds; so does the stored value here, so only groups change.
    User.objects.filter(pk=clerk.pk).update(date_joined=clerk.date_joined.replace(microsecond=0))
    clerk.refresh_from_db()
    clerks, approvers = (Group.objects.get(name=n) for n in ("finance_clerk", "finance_approver"))
    client = logged_in(admin_user)
    trail.mark()
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/change/", user_form(clerk, groups=[str(approvers.pk)])
    )
    assert response.status_code == 302, response.content
    assert list(clerk.groups.all()) == [approvers]
    changed = trail.one("admin.changed")
    assert (changed.object_type, changed.object_id, changed.actor_id) == (
        "auth.user",
        str(clerk.pk),
        admin_user.pk,
    )
    assert changed.changes == {"groups": [[clerks.pk], [approvers.pk]]}
    assert changed.metadata == {
        "m2m": {"groups": {"added": ["finance_approver"], "removed": ["finance_clerk"]}}
    }


def test_passwords_never_reach_the_trail(admin_user, make_user, trail):
    root = make_user(username="root", is_superuser=True)  # the admin role deletes no users
    client = logged_in(root)
    trail.mark()
    new = "N3w-Sturdy-Passphrase-2025!"
    added = client.post(
        "/admin/auth/user/add/",
        {"username": "newbie", "password1": new, "password2": new, "usable_password": "true"},
    )
    assert added.status_code == 302, added.content
    newbie = User.objects.get(username="newbie")
    other = "An0ther-Sturdy-Passphrase!"
    changed = client.post(
        f"/admin/auth/user/{newbie.pk}/password/",
        {"password1": other, "password2": other, "usable_password": "true"},
    )
    assert changed.status_code == 302, changed.content
    newbie.refresh_from_db()
    assert newbie.check_password(other)
    client.post(f"/admin/auth/user/{newbie.pk}/delete/", {"post": "yes"})
    assert not User.objects.filter(pk=newbie.pk).exists()

    assert trail.actions() == ["admin.added", "admin.changed", "admin.deleted"]
    created, password_changed, deleted = trail.events()
    assert created.changes["password"] == ["[redacted]", "[redacted]"]
    assert password_changed.changes == {"password": ["[redacted]", "[redacted]"]}
    assert password_changed.metadata == {"form": "password"}
    assert deleted.changes["password"] == ["[redacted]", "[redacted]"]
    text = stored_text()
    for secret in (new, other, newbie.password, PASSWORD, root.password):
        assert secret not in text


def test_admin_actions_through_services_are_recorded_once(admin_user, ledger, trail):
    """Admin writes that go through a service are recorded by the service, not twice."""
    period = FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)
    client = logged_in(admin_user)
    trail.mark()
    response = client.post(
        "/admin/finance/fiscalperiod/", {"action": "close_periods", "_selected_action": [period.pk]}
    )
    assert response.status_code == 302
    assert trail.actions("period.") == ["period.closed"]
    assert trail.actions("checks.") == ["checks.requested", "checks.completed"]
    assert trail.one("period.closed").actor_id == admin_user.pk


def test_lifting_a_lockout_in_the_admin_is_recorded(admin_user, trail, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR=IP).post("/admin/login/", {"username": "victim", "password": "x"})
    attempt = AccessAttempt.objects.get(username="victim")
    client = logged_in(admin_user)
    trail.mark()
    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not AccessAttempt.objects.exists()
    event = trail.one("admin.deleted")
    assert event.object_type == "axes.accessattempt"
    assert event.changes["username"] == ["victim", None]


def test_admin_cannot_revert_history_or_resubmit_tasks_around_the_trail(admin_user):
    target = TargetFactory(name="ops", channel="email", address="ops@example.com")
    target.address = "changed@example.com"
    target.save()
    version = target.history.order_by("history_id").first()
    client = logged_in(admin_user)
    reverted = client.post(
        f"/admin/alerts/target/{target.pk}/history/{version.history_id}/",
        target_form(address="attacker@example.com"),
    )
    assert reverted.status_code in (403, 404)
    target.refresh_from_db()
    assert target.address == "changed@example.com"
    page = client.get("/admin/django_q/failure/")
    assert page.status_code == 200 and b"resubmit_task" not in page.content
