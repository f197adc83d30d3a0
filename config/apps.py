"""Project glue: API tokens, roles, request context, the error shape."""

# The module, not the class: Django picks an app's config by looking for the one AppConfig
# subclass in its apps.py, and a second class here would make it fall back to a bare one.
from config import appconfig


class ConfigConfig(appconfig.ProjectApp):
    name = "config"
    verbose_name = "Access"

    def ready(self) -> None:
        # Here, not at the top: the sessions module reaches the models.
        from config.sessions import connect  # noqa: PLC0415

        connect()  # logins and logouts keep the session list
