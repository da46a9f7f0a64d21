"""What sales adds to the shell: permissions, menu, dashboard figures, search, profile block
and the daily jobs.

Domain modules are imported inside the functions: this module runs at app loading, before
the models may be touched.
"""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clientbase.accounts.permissions import register_action
from clientbase.core.cron import register_job
from clientbase.core.registry import (
    Counter,
    NavEntry,
    ProfileBlock,
    SearchHit,
    SearchSource,
    register_counter,
    register_nav,
    register_profile_block,
    register_search,
)

SALES = _("Sales")

# Everyday work, in the Sales menu; the set-up pages go to the Settings menu.
_WORK_PAGES = [
    (_("Leads"), "sales:leads", "sales.work"),
    (_("New lead"), "sales:lead_new", "sales.work"),
    (_("Leads board"), "sales:lead_board", "sales.work"),
    (_("Deals board"), "sales:board", "sales.work"),
    (_("Deals"), "sales:deals", "sales.work"),
    (_("Forecast"), "sales:forecast", "sales.work"),
    (_("Quotes"), "sales:quotes", "sales.work"),
    (_("Contracts"), "sales:contracts", "sales.work"),
    (_("Calendar"), "sales:calendar", "sales.work"),
    (_("To-do list"), "sales:todo", "sales.work"),
    (_("Activities"), "sales:activities", "sales.work"),
    (_("Clients not ordering"), "sales:reorder", "sales.work"),
    (_("Write a message"), "marketing:compose", "sales.work"),
    (_("SMS outbox"), "marketing:sms_outbox", "sales.work"),
    (_("KPI report"), "sales:kpi", "sales.work"),
]
_SETUP_PAGES = [
    (_("Pipelines"), "sales:pipelines", "sales.settings"),
    (_("Distribution rules"), "sales:distribution", "sales.settings"),
    (_("Web forms"), "sales:webforms", "sales.settings"),
    (_("Reorder rules"), "sales:reorder_rules", "sales.settings"),
    (_("Contract templates"), "sales:contract_templates", "sales.settings"),
    (_("Message templates"), "marketing:templates", "marketing.templates"),
    (_("KPI targets"), "sales:kpi_targets", "sales.kpi"),
]

# Quotes still in play, for the client profile's block.
_OPEN_QUOTE_STAGES = ("draft", "negotiation", "sent", "on_hold", "accepted")


# --- global search --------------------------------------------------------------------------


def _find_leads(user, text: str, limit: int) -> list[SearchHit]:
    from clientbase.sales.lead_queries import LeadFilters, lead_list

    return [
        SearchHit(
            title=f"{lead.number} {lead}",
            detail=" · ".join(x for x in (lead.stage.name, lead.email, lead.phone) if x),
            url=reverse("sales:lead", args=[lead.pk]),
        )
        for lead in lead_list(user, LeadFilters(q=text))[:limit]
    ]


def _find_deals(user, text: str, limit: int) -> list[SearchHit]:
    from clientbase.sales.deal_queries import deal_list

    return [
        SearchHit(
            title=f"{deal.number} {deal.name}",
            detail=f"{deal.stage.name} · {deal.client.name if deal.client else ''}",
            url=reverse("sales:deal", args=[deal.pk]),
        )
        for deal in deal_list(user, q=text)[:limit]
    ]


def _find_quotes(user, text: str, limit: int) -> list[SearchHit]:
    from clientbase.sales.quote_queries import QuoteFilters, quote_list

    found = quote_list(user, QuoteFilters(q=text)).select_related(None).select_related("client")
    return [
        SearchHit(
            title=f"{q.number} {q.title}".strip(),
            detail=f"{q.get_stage_display()} · {q.client.name if q.client_id else ''}",
            url=reverse("sales:quote", args=[q.pk]),
        )
        for q in found[:limit]
    ]


def _find_contracts(user, text: str, limit: int) -> list[SearchHit]:
    from clientbase.sales.quote_queries import ContractFilters, contract_list

    return [
        SearchHit(
            title=f"{c.number} {c.title}",
            detail=f"{c.get_status_display()} · {c.client.name}",
            url=reverse("sales:contract", args=[c.pk]),
        )
        for c in contract_list(user, ContractFilters(q=text))[:limit]
    ]


# --- dashboard and profile ------------------------------------------------------------------


def _leads_this_month(user) -> int:
    from clientbase.sales.lead_queries import created_this_month

    return created_this_month(user).count()


def _deals_closing(user) -> int:
    from clientbase.sales.deal_queries import closing_this_month

    return closing_this_month(user).count()


def _contracts_to_renew(user) -> int:
    from clientbase.sales.quote_queries import to_renew

    return to_renew(user).count()


def _overdue_reminders(user) -> int:
    from clientbase.sales.activity_queries import overdue

    return overdue(user).count()


def _calls_and_meetings(user) -> int:
    from clientbase.sales.activity_queries import calls_and_meetings_this_week

    return calls_and_meetings_this_week(user).count()


def _quote_figures(user, client) -> list[tuple]:
    from clientbase.sales.models import Contract
    from clientbase.sales.quote_queries import contracts_for, quotes_for

    quotes = quotes_for(user).filter(client=client, stage__in=_OPEN_QUOTE_STAGES).count()
    contracts = contracts_for(user).filter(client=client, status=Contract.Status.ACTIVE).count()
    if not quotes and not contracts:
        return []
    return [(_("Open quotes"), quotes), (_("Active contracts"), contracts)]


# --- daily jobs -----------------------------------------------------------------------------


def _distribute(day) -> str:
    from clientbase.sales.lead_services import leads_distribute

    count = leads_distribute()
    return ngettext(
        "%(count)d waiting lead handed out", "%(count)d waiting leads handed out", count
    ) % {"count": count}


def _recount_deal_totals(day) -> str:
    from clientbase.sales.deal_services import deal_summary_rebuild

    rows = deal_summary_rebuild()
    return ngettext(
        "Deal totals recounted: %(count)d row", "Deal totals recounted: %(count)d rows", rows
    ) % {"count": rows}


def _send_reminders(day) -> str:
    from clientbase.sales.activity_services import reminders_send

    count = reminders_send()
    return ngettext("%(count)d reminder sent", "%(count)d reminders sent", count) % {"count": count}


def _reorder_reminders(day) -> str:
    from clientbase.sales.activity_services import reorder_reminders_create

    count = reorder_reminders_create(today=day)
    return ngettext("%(count)d reorder to-do made", "%(count)d reorder to-dos made", count) % {
        "count": count
    }


def _contract_renewals(day) -> str:
    from clientbase.sales.quote_services import contracts_renewal_run

    expired, reminded = contracts_renewal_run(day)
    return _("%(expired)d contracts expired, %(reminded)d renewal reminders sent") % {
        "expired": expired,
        "reminded": reminded,
    }


def register() -> None:
    """Hook sales into roles, navigation, the dashboard, search, the profile and the jobs."""
    # Importing the services registers their number series and newsfeed event types.
    from clientbase.sales import deal_services, lead_services, quote_services  # noqa: F401

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
    for label, url_name, permission in _WORK_PAGES:
        register_nav(NavEntry("sales", label, url_name, permission))
    for label, url_name, permission in _SETUP_PAGES:
        register_nav(NavEntry("settings", label, url_name, permission))
    for key, label, count, url_name, icon, url_query in [
        ("sales.calls_meetings_week", _("Calls and meetings this week"), _calls_and_meetings,
         "sales:calendar", "telephone", "?view=week"),
        ("sales.overdue_reminders", _("Overdue reminders"), _overdue_reminders, "sales:todo",
         "alarm", ""),
        ("sales.leads_this_month", _("Leads created this month"), _leads_this_month,
         "sales:leads", "person-plus", ""),
        ("sales.deals_closing", _("Deals closing this month"), _deals_closing, "sales:deals",
         "calendar-check", "?status=open"),
        ("sales.contracts_to_renew", _("Contracts to renew"), _contracts_to_renew,
         "sales:contracts", "arrow-repeat", "?renew=1"),
    ]:  # fmt: skip
        register_counter(Counter(key, label, count, url_name, icon, "sales.work", url_query))
    register_search(SearchSource(_("Leads"), _find_leads))
    register_search(SearchSource(_("Deals"), _find_deals))
    register_search(SearchSource(_("Quotes"), _find_quotes))
    register_search(SearchSource(_("Contracts"), _find_contracts))
    register_profile_block(
        ProfileBlock("sales.quotes", _("Quotes and contracts"), _quote_figures, "file-earmark-text")
    )
    for name, label, run in [
        ("sales_distribute", _("Hand out new leads still without an owner"), _distribute),
        ("sales_deal_totals", _("Recount the deal totals of boards and forecast"),
         _recount_deal_totals),
        ("sales_reminders", _("Mail owners the activity reminders that have come due"),
         _send_reminders),
        ("sales_reorder_reminders", _("Make to-dos for clients who have not ordered for a while"),
         _reorder_reminders),
        ("sales_contract_renewals",
         _("Expire ended contracts and remind owners of renewals due this month"),
         _contract_renewals),
    ]:  # fmt: skip
        register_job(name, label)(run)
