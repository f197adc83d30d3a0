"""Backups, verification and restore drills."""

# config.appconfig as a module, not its class: see config/apps.py.
from config import appconfig


class BackupsConfig(appconfig.ProjectApp):
    name = "backups"
