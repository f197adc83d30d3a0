"""Backups, verification and restore drills."""

from config import appconfig  # the module: see config/apps.py


class BackupsConfig(appconfig.ProjectApp):
    name = "backups"
