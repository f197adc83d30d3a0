"""Small admin building blocks shared by the apps' admin modules."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models, router, transaction
from simple_history.admin import SimpleHistoryAdmin

from config.events import diff, record, snapshot

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]  # what the mixins are mixed into
else:
    _ModelAdmin = object


class ReadOnlyTabularInline(admin.TabularInline):
    """A history shown on its parent's page: nothing to add, change or delete."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdminMixin:
    """Records that change only through services (or never): viewable, with actions, but no
    add, change or delete form."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def audit_state(obj: models.Model) -> dict[str, Any]:
    """An object's stored values as the trail keeps them: fields (foreign keys as ids) and
    many-to-many relations as sorted id lists. Auto-updated timestamps are left out."""
    opts = obj._meta
    names = [f.name for f in opts.concrete_fields if not getattr(f, "auto_now", False)]
    state = snapshot(obj, names)
    for field in opts.many_to_many:
        ids = getattr(obj, field.name).values_list("pk", flat=True) if obj.pk is not None else []
        state[field.name] = sorted(ids)
    return state


def _m2m_names(obj: models.Model, before: dict[str, Any], after: dict[str, Any]) -> dict:
    """{relation: {"added": [names], "removed": [names]}} for the relations that changed."""
    result = {}
    for field in obj._meta.many_to_many:
        old, new = set(before.get(field.name) or ()), set(after.get(field.name) or ())
        if old == new:
            continue
        names = field.related_model._default_manager.in_bulk(old ^ new)
        result[field.name] = {
            "added": sorted(str(names.get(pk, pk)) for pk in new - old),
            "removed": sorted(str(names.get(pk, pk)) for pk in old - new),
        }
    return result


class AuditedAdminMixin(_ModelAdmin):
    """For models the admin writes without a service: every add, change and delete records
    admin.added / admin.changed / admin.deleted in the admin's transaction, with the values
    before and after (many-to-many as ids, plus the names added and removed; inline rows as
    events of their own). Secret fields (password, ...) are redacted by the trail itself, so
    only the fact that they changed is kept.

    A subclass whose save_model writes through a service (which records its own event) simply
    does not call this save_model; its inline rows are still recorded.
    """

    def audit_state(self, obj: models.Model) -> dict[str, Any]:
        """What the trail keeps of `obj`; override to mask values that are secrets."""
        return audit_state(obj)

    def save_model(self, request, obj, form, change):
        stored = type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        # The form already copied the new values onto `obj`: "before" must come from the row.
        form._audit_before = self.audit_state(stored) if stored is not None else {}
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        existing = {
            id(f.instance): f.instance.pk
            for f in formset.initial_forms
            if f.instance.pk is not None
        }
        rows = formset.model._default_manager.in_bulk(list(existing.values()))
        before = {key: audit_state(rows[pk]) for key, pk in existing.items() if pk in rows}
        super().save_formset(request, form, formset, change)
        children = form.__dict__.setdefault("_audit_children", [])
        for obj in formset.new_objects:
            children.append(("admin.added", obj, obj.pk, {}, audit_state(obj)))
        for obj, _fields in formset.changed_objects:
            children.append(
                ("admin.changed", obj, obj.pk, before.get(id(obj), {}), audit_state(obj))
            )
        for obj in formset.deleted_objects:  # deleting cleared obj.pk; the id is kept above
            children.append(
                ("admin.deleted", obj, existing.get(id(obj)), before.get(id(obj), {}), {})
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(form, "_audit_before", None)
        if before is not None:
            after = self.audit_state(obj)
            changes = diff(before, after)
            if changes or not change:
                metadata = {"m2m": m2m} if (m2m := _m2m_names(obj, before, after)) else {}
                record(
                    action="admin.changed" if change else "admin.added",
                    obj=obj,
                    changes=changes,
                    metadata=metadata,
                )
        parent = {"parent_type": obj._meta.label_lower, "parent_id": obj.pk}
        for action, child, pk, old, new in getattr(form, "_audit_children", []):
            changes = diff(old, new)
            if action == "admin.changed" and not changes:
                continue  # the form saw a change that left the stored values as they were
            m2m = _m2m_names(child, old, new)
            record(
                action=action,
                obj=child,
                object_id=pk,
                changes=changes,
                metadata={**parent, **({"m2m": m2m} if m2m else {})},
            )

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(type(obj))):
            self._audit_deleted(obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # The bulk delete action runs outside the admin's transactions: this one makes the
        # events and the deletion one unit.
        with transaction.atomic(using=router.db_for_write(queryset.model)):
            for obj in queryset:
                self._audit_deleted(obj)
            super().delete_queryset(request, queryset)

    def _audit_deleted(self, obj: models.Model) -> None:
        record(action="admin.deleted", obj=obj, changes=diff(self.audit_state(obj), {}))


class ViewOnlyHistoryAdmin(SimpleHistoryAdmin):
    """django-simple-history's History pages, without "revert": a revert writes the model
    without its service and without an audit event. SIMPLE_HISTORY_REVERT_DISABLED only hides
    the button, so the POST itself is refused here."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("Reverting from history is disabled; edit the record instead.")
        return super().history_form_view(request, object_id, version_id, extra_context)
