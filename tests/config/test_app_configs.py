"""The project's apps are found by their config class, not by a list of names."""

from django.apps import AppConfig, apps

from config.appconfig import ProjectApp, project_app_labels
from config.registry import all_checks
from config.schedules import declared_jobs

OURS = ("config", "finance", "integrity", "audit", "backups", "monitoring", "alerts")


def test_every_app_of_ours_runs_its_own_config_and_nothing_else_counts_as_ours():
    assert project_app_labels() == OURS
    for label in OURS:
        config = apps.get_app_config(label)
        # Django falls back to a bare AppConfig (no ready(), no verbose name) when an apps.py
        # holds two config classes; ours import the base by its module for that reason.
        assert type(config) is not AppConfig and isinstance(config, ProjectApp), label
    assert not isinstance(apps.get_app_config("auth"), ProjectApp)


def test_checks_and_schedules_are_collected_from_the_project_apps():
    prefixes = {name.split(".", 1)[0] for name in all_checks()}
    assert prefixes == {"integrity", "finance", "audit", "alerts", "backups"}
    assert {job.func.split(".", 1)[0] for job in declared_jobs()} <= set(OURS)
    assert declared_jobs()
