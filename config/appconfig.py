"""The base of the project's own app configs, and the list of the project's apps."""

from importlib import import_module
from types import ModuleType

from django.apps import AppConfig, apps


class ProjectApp(AppConfig):
    """The base of Ledgerguard's own apps (config's and each app's `apps.py`).

    The plumbing looks for the checks an app declares (`<app>/checks.py`) and the jobs it
    schedules (`<app>/schedules.py`) in these apps only, so it needs no list of their names.
    """

    default_auto_field = "django.db.models.BigAutoField"


def project_apps() -> list[AppConfig]:
    """The installed apps that are Ledgerguard's own, in INSTALLED_APPS order."""
    return [config for config in apps.get_app_configs() if isinstance(config, ProjectApp)]


def project_app_labels() -> tuple[str, ...]:
    return tuple(config.label for config in project_apps())


def project_modules(name: str) -> list[ModuleType]:
    """`<app>.<name>` of each of the project's apps that has one (checks, schedules, demo), in
    INSTALLED_APPS order; an import error inside such a module is raised, not taken for absence."""
    modules = []
    for config in project_apps():
        try:
            modules.append(import_module(f"{config.name}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.{name}":
                raise
    return modules
