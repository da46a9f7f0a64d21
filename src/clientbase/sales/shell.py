"""What sales adds to the shell: permissions, menu, dashboard figures, profile block, jobs.

Each area registers in its own block below.
"""

from django.utils.translation import gettext_lazy as _

from clientbase.accounts.permissions import register_action

SALES = _("Sales")


def register() -> None:
    """Hook sales into roles, navigation, the dashboard, search and the client profile."""
    for code, label in [
        ("sales.work", _("Work leads, deals, activities, quotes and contracts")),
        ("sales.approve", _("Approve or reject quotes")),
        ("sales.kpi", _("Set KPI targets and read the team's KPI report")),
        (
            "sales.settings",
            _("Set up pipelines, lead distribution, web forms and contract templates"),
        ),
        ("marketing.templates", _("Write message templates")),
    ]:
        register_action(code, label, SALES)
    # --- leads, distribution, web forms
    # --- pipelines, deals, boards, forecast, stage tasks
    # --- activities, calendar, reminders, reorder reminders
    # --- quotes, contracts, contract templates
    # --- KPI
    # --- message templates
