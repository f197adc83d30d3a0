"""Every admin add and change form, and every admin action, as every role: nothing in them grants
more than the role holds (no superuser flag, no direct permissions, no group beyond the role's
own permissions, no field that decides what code a worker runs)."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.forms import ModelChoiceField
from django.test import RequestFactory
from django.utils import timezone
from django_q.models import Schedule

from alerts.services import raise_alert, silence_create
from audit.models import AuditEvent
from config.roles import ROLE_NAMES, held_permissions
from integrity.services import checks_run, deadletter_create
from tests.alerts.factories import (
    EscalationPolicyFactory,
    EscalationStepFactory,
    RouteFactory,
    TargetFactory,
)
from tests.config.factories import ApiTokenFactory, GroupFactory
from tests.config.helpers import form_data
from tests.conftest import ROLES
from tests.factories import UserFactory
from tests.integrity.factories import ScheduleFactory

# Fields that hand out power beyond any role, or decide what code runs: only a superuser (and
# for schedules, nobody: they are declared in code) may edit them.
FORBIDDEN = {
    "is_superuser",
    "user_permissions",
    "permissions",
    "func",
    "args",
    "kwargs",
    "hook",
    "cluster",
    "intended_date_kwarg",
    "q_options",
}

SCHEDULE = "integrity.purge_expired_idempotency_keys"


@pytest.fixture
def one_of_each(ledger, clerk, post):
    """At least one row of every model whose admin has a change form worth walking."""
    post(ledger.cash, ledger.equity, "5.00")
    deadletter_create(operation="test.nothing", payload={})
    checks_run(trigger="command", checks=["integrity.scheduler_alive"])
    raise_alert(source="test", key="forms", severity="info", title="Forms")
    target = TargetFactory(name="on-call", channel="email", address="oc@example.com")
    policy = EscalationPolicyFactory(name="p")
    EscalationStepFactory(policy=policy, position=0, delay_minutes=0, targets=[target])
    RouteFactory(name="r", source="test", policy=policy)
    silence_create(actor=clerk, reason="maintenance", ends_at=timezone.now() + timedelta(hours=1))
    ApiTokenFactory(user=clerk, name="t")
    call_command("sync_schedules")
    GroupFactory(name="everything", permissions=Permission.objects.all())


def registered_admins():
    """Every model the admin site has, with its ModelAdmin."""
    for model in apps.get_models():
        if admin.site.is_registered(model):
            yield model, admin.site.get_model_admin(model)


def _admin_urls():
    for model, model_admin in registered_admins():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        row = model._default_manager.order_by("pk").first()
        yield model, model_admin, base + "add/", None
        if row is not None:
            yield model, model_admin, f"{base}{row.pk}/change/", row


def _editable(response) -> dict[str, object]:
    """The form fields a user can submit on an admin add/change page (inlines included)."""
    fields = dict(response.context["adminform"].form.fields)
    for inline in response.context.get("inline_admin_formsets", []):
        if inline.has_add_permission or inline.has_change_permission:
            readonly = set(inline.readonly_fields)
            for name, field in inline.formset.empty_form.fields.items():
                if name not in readonly:
                    fields[f"{inline.opts.model._meta.model_name}.{name}"] = field
    return fields


def _perms_of(obj) -> set[str]:
    if isinstance(obj, Group):
        pairs = obj.permissions.values_list("content_type__app_label", "codename")
        return {f"{a}.{c}" for a, c in pairs}
    if isinstance(obj, Permission):
        return {f"{obj.content_type.app_label}.{obj.codename}"}
    return set()


@pytest.mark.parametrize("role", ROLES)
def test_no_form_field_grants_more_than_the_role_holds(client, make_user, one_of_each, role):
    user = make_user(role, is_staff=True)
    held = held_permissions(user)
    client.force_login(user)
    walked = 0
    for model, _admin, url, _row in _admin_urls():
        response = client.get(url)
        if response.status_code != 200:
            continue
        walked += 1
        fields = _editable(response)
        bare = {name.rsplit(".", 1)[-1] for name in fields}
        assert not bare & FORBIDDEN, (role, url, sorted(bare & FORBIDDEN))
        for name, field in fields.items():
            if isinstance(field, ModelChoiceField) and field.queryset.model in (Group, Permission):
                for choice in field.queryset:
                    # Role membership is the admin's to manage; nothing else beyond their own.
                    if isinstance(choice, Group) and choice.name in ROLE_NAMES:
                        assert user.has_perm("auth.change_user"), (role, url, name)
                        continue
                    assert _perms_of(choice) <= held, (role, url, name, str(choice))
        # A role only ever edits models it may add or change.
        if fields:
            codename = "add" if url.endswith("add/") else "change"
            assert user.has_perm(f"{model._meta.app_label}.{codename}_{model._meta.model_name}")
    assert walked, role


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_action_declares_permissions_the_role_holds(make_user, one_of_each, role):
    user = make_user(role, is_staff=True)
    request = RequestFactory().get("/admin/")
    request.user = user
    for model, model_admin in registered_admins():
        if not model_admin.has_view_or_change_permission(request):
            continue
        for name, (func, _name, _desc) in model_admin.get_actions(request).items():
            declared = getattr(func, "allowed_permissions", None)
            assert declared, f"{model._meta.label}: action {name} declares no permission"
            for perm in declared:
                check = getattr(model_admin, f"has_{perm}_permission")
                assert check(request), (role, model._meta.label, name, perm)


def test_admin_cannot_make_anyone_superuser(client, make_user):
    boss = make_user("admin", username="boss2", is_staff=True)
    client.force_login(boss)
    page = client.get(f"/admin/auth/user/{boss.pk}/change/")
    assert page.status_code == 200
    data = form_data(page.context["adminform"].form)
    data["is_superuser"] = "on"
    data["user_permissions"] = [p.pk for p in Permission.objects.all()[:5]]
    response = client.post(f"/admin/auth/user/{boss.pk}/change/", data)
    assert response.status_code == 302, response.content[:500]
    boss.refresh_from_db()
    assert not boss.is_superuser
    assert not boss.user_permissions.exists()


def test_admin_cannot_assign_a_group_beyond_their_own_permissions(client, make_user):
    boss = make_user("admin", username="boss2", is_staff=True)
    clerk = make_user("finance_clerk", username="clerk2", is_staff=True)
    god = GroupFactory(name="everything", permissions=Permission.objects.all())
    client.force_login(boss)
    page = client.get(f"/admin/auth/user/{clerk.pk}/change/")
    offered = set(page.context["adminform"].form.fields["groups"].queryset)
    assert god not in offered
    assert Group.objects.get(name="admin") in offered  # role membership is theirs to manage
    data = form_data(page.context["adminform"].form)
    data["groups"] = [god.pk]
    response = client.post(f"/admin/auth/user/{clerk.pk}/change/", data)
    assert response.status_code == 200  # the form refuses the choice
    assert "groups" in response.context["adminform"].form.errors
    assert not clerk.groups.filter(pk=god.pk).exists()


def test_admin_cannot_change_a_superuser_or_their_password(client, make_user, django_user_model):
    root = UserFactory(username="root", is_superuser=True)
    stronger = make_user(
        "finance_clerk", username="special", is_staff=True, permissions=["django_q.delete_schedule"]
    )
    client.force_login(make_user("admin", username="boss2", is_staff=True))
    for target in (root, stronger):
        before = django_user_model.objects.get(pk=target.pk).password
        page = client.get(f"/admin/auth/user/{target.pk}/change/")
        assert page.status_code == 200 and not page.context["has_change_permission"]
        denied = client.post(
            f"/admin/auth/user/{target.pk}/password/",
            {
                "password1": "N3w-passw0rd-xyz",
                "password2": "N3w-passw0rd-xyz",
                "usable_password": "true",
            },
        )
        assert denied.status_code == 403
        assert django_user_model.objects.get(pk=target.pk).password == before


def test_admin_cannot_edit_a_group(client, make_user):
    client.force_login(make_user("admin", username="boss2", is_staff=True))
    group = Group.objects.get(name="finance_clerk")
    before = set(group.permissions.values_list("pk", flat=True))
    response = client.post(
        f"/admin/auth/group/{group.pk}/change/",
        {
            "name": "finance_clerk",
            "permissions": list(Permission.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 403
    assert set(group.permissions.values_list("pk", flat=True)) == before
    assert client.post("/admin/auth/group/add/", {"name": "x"}).status_code == 403


def test_admin_cannot_change_what_a_schedule_runs(client, make_user):
    call_command("sync_schedules")
    schedule = Schedule.objects.get(name=SCHEDULE)
    client.force_login(make_user("admin", username="boss2", is_staff=True))
    page = client.get(f"/admin/django_q/schedule/{schedule.pk}/change/")
    assert set(page.context["adminform"].form.fields) == {"next_run"}
    later = timezone.now() + timedelta(hours=3)
    response = client.post(
        f"/admin/django_q/schedule/{schedule.pk}/change/",
        {
            "func": "os.system",
            "args": "'touch /tmp/owned'",
            "kwargs": "",
            "hook": "os.system",
            "cluster": "elsewhere",
            "name": "innocent",
            "repeats": "5",
            "next_run_0": later.strftime("%Y-%m-%d"),
            "next_run_1": later.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.func, schedule.args, schedule.hook, schedule.cluster, schedule.name) == (
        "integrity.tasks.purge_expired_idempotency_keys",
        None,
        None,
        None,
        SCHEDULE,
    )
    assert schedule.repeats == -1
    assert abs((schedule.next_run - later).total_seconds()) < 2  # rescheduling is allowed
    event = AuditEvent.objects.filter(action="schedule.rescheduled").latest("id")
    assert event.object_id == str(schedule.pk)
    assert client.post("/admin/django_q/schedule/add/", {"func": "os.system"}).status_code == 403
    delete = client.post(f"/admin/django_q/schedule/{schedule.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403


def test_admin_pauses_resumes_and_runs_a_schedule_now(client, make_user):
    call_command("sync_schedules")
    schedule = Schedule.objects.get(name=SCHEDULE)
    client.force_login(make_user("admin", username="boss2", is_staff=True))

    def act(action):
        return client.post(
            "/admin/django_q/schedule/", {"action": action, "_selected_action": [schedule.pk]}
        )

    assert act("pause").status_code == 302
    schedule.refresh_from_db()
    assert schedule.repeats == 0
    call_command("sync_schedules")
    schedule.refresh_from_db()
    assert schedule.repeats == 0  # the pause survives a sync
    assert act("resume").status_code == 302
    schedule.refresh_from_db()
    assert schedule.repeats == -1 and schedule.next_run > timezone.now()
    assert act("run_now").status_code == 302
    schedule.refresh_from_db()
    assert schedule.next_run <= timezone.now()
    actions = list(
        AuditEvent.objects.filter(object_type="django_q.schedule")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["schedule.paused", "schedule.resumed", "schedule.rescheduled"]


def test_sync_restores_every_declared_field(db):
    call_command("sync_schedules")
    Schedule.objects.filter(name=SCHEDULE).update(
        func="os.system",
        args="'id'",
        kwargs="cmd='id'",
        hook="os.system",
        cluster="x",
        intended_date_kwarg="when",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=7,
    )
    call_command("sync_schedules")
    schedule = Schedule.objects.get(name=SCHEDULE)
    assert schedule.func == "integrity.tasks.purge_expired_idempotency_keys"
    assert not schedule.args and not schedule.kwargs and not schedule.hook
    assert schedule.cluster is None and schedule.intended_date_kwarg is None
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1
    event = AuditEvent.objects.filter(action="schedules.synced").latest("id")
    assert set(event.metadata["updated"][SCHEDULE]) >= {"func", "args", "kwargs", "hook"}


def test_sync_names_schedules_no_app_declares(db, capsys):
    ScheduleFactory(name="by hand", func="os.system", args="'id'")
    call_command("sync_schedules")
    assert "by hand: os.system" in capsys.readouterr().out


def test_an_admin_cannot_grant_themselves_a_role(client, make_user):
    boss = make_user("admin", username="boss2", is_staff=True)
    client.force_login(boss)
    url = f"/admin/auth/user/{boss.pk}/change/"
    page = client.get(url)
    assert "groups" not in page.context["adminform"].form.fields
    data = form_data(page.context["adminform"].form)
    data["groups"] = list(Group.objects.values_list("pk", flat=True))
    assert client.post(url, data).status_code == 302
    assert set(boss.groups.values_list("name", flat=True)) == {"admin"}


def test_the_schedule_admin_shows_state_and_names_the_schedule(client, make_user):
    call_command("sync_schedules")
    schedule = Schedule.objects.get(name=SCHEDULE)
    client.force_login(make_user("admin", username="boss2", is_staff=True))
    client.post("/admin/django_q/schedule/", {"action": "pause", "_selected_action": [schedule.pk]})
    listing = client.get("/admin/django_q/schedule/").content.decode()
    assert "Paused" in listing
    page = client.get(f"/admin/django_q/schedule/{schedule.pk}/change/").content.decode()
    assert f"<title>{SCHEDULE} |" in page
