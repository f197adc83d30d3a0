"""django-q2's schedules, seen and paused here; what they run is declared in code."""

from django.contrib import admin
from django.utils import timezone
from django_q.admin import ScheduleAdmin as QScheduleAdmin
from django_q.models import Schedule

from integrity import scheduling


class ScheduleAdmin(QScheduleAdmin):
    """Schedules are declared in code (`<app>/schedules.py`, written by `sync_schedules`).

    Here they are seen, paused, resumed and rescheduled, nothing more: the function, its
    arguments, hook and cluster decide what code a worker runs, so no role edits them here, and
    nobody adds one. Every change goes through the audited services in integrity/scheduling.py.
    """

    fields = [
        "name",
        "state",
        "func",
        "args",
        "kwargs",
        "hook",
        "cluster",
        "intended_date_kwarg",
        "schedule_type",
        "minutes",
        "cron",
        "repeats",
        "task",
        "next_run",
    ]
    list_display = [
        "id",
        "name",
        "state",
        "func",
        "schedule_type",
        "cron",
        "next_run",
        "get_last_run",
        "get_success",
    ]
    actions = ["pause", "resume", "run_now"]

    def get_readonly_fields(self, request, obj=None):
        return [f for f in self.fields if f != "next_run"]

    @admin.display(description="State")
    def state(self, obj: Schedule) -> str:
        return {"paused": "Paused", "postponed": "Postponed past its next slot"}.get(
            scheduling.schedule_state(obj), "Active"
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # django-q2 names a schedule by its function, which several schedules share.
        schedule = self.get_object(request, object_id)
        if schedule is not None and schedule.name:
            extra_context = {**(extra_context or {}), "subtitle": schedule.name}
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a declared schedule comes back at the next sync; pause it instead

    def save_model(self, request, obj, form, change):
        scheduling.schedule_reschedule(schedule=obj, next_run=form.cleaned_data["next_run"])

    @admin.action(description="Pause the selected schedules", permissions=["change"])
    def pause(self, request, queryset):
        for schedule in queryset.order_by("pk"):
            scheduling.schedule_pause(schedule=schedule)
        self.message_user(request, f"Paused {queryset.count()} schedule(s).")

    @admin.action(description="Resume the selected schedules", permissions=["change"])
    def resume(self, request, queryset):
        for schedule in queryset.order_by("pk"):
            scheduling.schedule_resume(schedule=schedule)
        self.message_user(request, f"Resumed {queryset.count()} schedule(s).")

    @admin.action(description="Run the selected schedules now", permissions=["change"])
    def run_now(self, request, queryset):
        for schedule in queryset.order_by("pk"):
            scheduling.schedule_reschedule(schedule=schedule, next_run=timezone.now())
        self.message_user(request, f"{queryset.count()} schedule(s) will run within a minute.")


if admin.site.is_registered(Schedule):
    admin.site.unregister(Schedule)
admin.site.register(Schedule, ScheduleAdmin)
