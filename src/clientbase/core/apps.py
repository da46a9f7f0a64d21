from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """The core module: money, time, numbering, history, visibility, the shell."""

    name = "clientbase.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from clientbase.core import jobs  # noqa: F401  (registers the daily jobs)
        from clientbase.core.registry import NavEntry, register_nav

        register_nav(NavEntry("reports", _("Audit log"), "core:audit_log", "core.view_audit"))
        register_nav(
            NavEntry("settings", _("Automation"), "core:automation_log", "core.view_automation")
        )
        register_nav(
            NavEntry(
                "settings",
                _("Custom fields"),
                "core:custom_field_list",
                "core.manage_custom_fields",
            )
        )
