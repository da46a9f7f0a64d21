"""What billing adds to the shell: permissions, menu, dashboard figures, profile blocks, hooks."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clientbase.accounts.permissions import register_action
from clientbase.billing import queries, services
from clientbase.billing.models import BankPayment, Service
from clientbase.catalog.services import on_price_change
from clientbase.clients.models import Client
from clientbase.clients.services import (
    on_client_delete,
    on_client_merge_check,
    on_status_change,
    register_deferred_kind,
)
from clientbase.core.cron import register_job
from clientbase.core.registry import (
    Counter,
    NavEntry,
    ProfileBlock,
    register_counter,
    register_nav,
    register_profile_block,
)

BILLING = _("Billing")


def _summary_figures(user, client) -> list[tuple]:
    summary = queries.billing_summary(client)
    if not any([summary.paid[0], summary.unpaid[0], summary.credit, summary.income]):
        return []
    return [
        (_("Paid"), f"{summary.paid[0]} · {summary.paid[1]}"),
        (_("Unpaid"), f"{summary.unpaid[0]} · {summary.unpaid[1]}"),
        (_("Cancelled"), f"{summary.cancelled[0]} · {summary.cancelled[1]}"),
        (_("Refunded"), f"{summary.refunded[0]} · {summary.refunded[1]}"),
        (_("Income"), str(summary.income)),
        (_("Credit balance"), str(summary.credit)),
    ]


def _same_products(survivor, merged) -> str:
    """Two clients with a live service of the same product would break "no duplicate lines"."""
    live = Service.objects.filter(status__in=Service.LIVE)
    shared = (
        live.filter(client=merged)
        .filter(product__in=live.filter(client=survivor).values("product"))
        .select_related("product")
        .first()
    )
    if shared is None:
        return ""
    return _(
        "Both clients have %(product)s: terminate or transfer one of the two services first."
    ) % {"product": shared.product.name}


def _mark_overdue(day) -> str:
    marked = services.invoices_mark_overdue(day=day)
    return ngettext(
        "%(count)d invoice marked overdue", "%(count)d invoices marked overdue", marked
    ) % {"count": marked}


def _billing_run(day) -> str:
    # Queued for the workers, and worked here too, so the run ends even with none running.
    from clientbase.billing.run import billing_run_request, billing_run_work

    run = billing_run_request(by=None, trigger="cron", day=day)
    billing_run_work(run.pk)
    run.refresh_from_db()
    return _("Billing run %(run)s: %(invoices)s invoices, %(held)s held, %(errors)s errors") % {
        "run": run.pk,
        "invoices": run.invoices,
        "held": run.held,
        "errors": run.errors,
    }


def _dunning(day) -> str:
    from clientbase.billing.credit import thresholds_check
    from clientbase.billing.dunning import dunning_run
    from clientbase.billing.models import CreditLimit

    summary = str(dunning_run(day))
    # Thresholds also move with the billing run's invoices, which are written in bulk.
    warned = 0
    for client_id in CreditLimit.objects.values_list("client_id", flat=True).distinct():
        warned += len(thresholds_check(Client.everything.get(pk=client_id)))
    return f"{summary}, credit thresholds reached: {warned}"


def _collections_figures(user, client) -> list[tuple]:
    from clientbase.billing.dunning import collections_bar

    bar = collections_bar(client)
    if bar is None:
        return []
    figures = [
        (_("Days past due"), bar.days_past_due),
        (_("Amount owed"), ", ".join(str(m) for m in bar.owed)),
    ]
    if bar.in_collections:
        figures.append(
            (_("Minimum payment to leave collections"), ", ".join(str(m) for m in bar.minimum))
        )
    for day, action, number in bar.next_steps:
        figures.append((f"{day:%Y-%m-%d}", f"{action} · {number}"))
    return figures


def register() -> None:
    """Hook billing into roles, navigation, the dashboard, the client profile and its status."""
    for code, label in [
        ("billing.sell", _("Take orders and change services")),
        ("billing.invoice", _("Edit, issue, send and cancel invoices")),
        ("billing.payment", _("Record payments and apply credit")),
        ("billing.refund", _("Refund, credit and write off")),
    ]:
        register_action(code, label, BILLING)
    register_job("billing_run", _("Invoice the services that fall due"))(_billing_run)
    register_job("invoices_overdue", _("Mark invoices still owed after their due date overdue"))(
        _mark_overdue
    )
    register_job("dunning", _("Take the reminder, fee, suspension and collections steps due"))(
        _dunning
    )
    on_status_change(services.services_follow_account)
    register_deferred_kind(
        "service",
        services.run_scheduled_service_action,
        services.describe_scheduled_service_action,
    )
    on_price_change(services.services_reprice_at_renewal)
    on_client_delete(services.billing_blocks_delete)
    on_client_merge_check(_same_products)
    register_nav(NavEntry("billing", _("Invoices"), "billing:invoices"))
    register_nav(NavEntry("billing", _("Orders"), "billing:orders"))
    register_nav(NavEntry("billing", _("Services"), "billing:services"))
    register_nav(NavEntry("billing", _("Payments"), "billing:payments"))
    register_nav(NavEntry("billing", _("Bank statements"), "billing:statements", "billing.payment"))
    register_nav(NavEntry("billing", _("Billing runs"), "billing:runs"))
    register_nav(NavEntry("billing", _("Collections"), "billing:collections"))
    register_nav(NavEntry("billing", _("Dunning scenarios"), "billing:dunning", "billing.refund"))
    register_nav(NavEntry("billing", _("Reports"), "billing:reports"))
    register_counter(
        Counter(
            "billing.pending_orders",
            _("Pending orders"),
            lambda user: queries.orders_for(user).filter(status="pending").count(),
            "billing:orders",
            "cart",
            url_query="?status=pending",
        )
    )
    register_counter(
        Counter(
            "billing.overdue",
            _("Overdue invoices"),
            lambda user: queries.overdue_invoices(user).count(),
            "billing:invoices",
            "exclamation-triangle",
            url_query="?overdue=1",
        )
    )
    register_counter(
        Counter(
            "billing.due",
            _("Services due to renew in 14 days"),
            lambda user: queries.services_due(user).count(),
            "billing:services",
            "arrow-repeat",
            url_query="?due=1",
        )
    )
    register_counter(
        Counter(
            "billing.suspense",
            _("Unmatched bank payments"),
            lambda user: BankPayment.objects.filter(state=BankPayment.State.SUSPENSE).count(),
            "billing:suspense",
            "inbox",
            permission="billing.payment",
        )
    )
    register_profile_block(ProfileBlock("billing", BILLING, _summary_figures, "receipt"))
    register_counter(
        Counter(
            "billing.collections",
            _("Clients in collections"),
            lambda user: (
                queries.invoices_for(user)
                .filter(status="collections")
                .values("client")
                .distinct()
                .count()
            ),
            "billing:collections",
            "briefcase",
        )
    )
    register_profile_block(
        ProfileBlock("collections", _("Overdue"), _collections_figures, "exclamation-octagon")
    )
