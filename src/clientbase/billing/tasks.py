"""Background tasks of billing (run by `clientbase worker`)."""

from django_tasks import task

from clientbase.billing.models import Invoice
from clientbase.core.errors import ServiceError


@task()
def email_invoices(invoice_ids: list[int]) -> str:
    """Email the billing run's new invoices, each after its own commit."""
    from clientbase.billing.services import invoice_send

    sent = 0
    for invoice in Invoice.objects.filter(pk__in=invoice_ids, sent_at=None).select_related(
        "client"
    ):
        try:
            invoice_send(by=None, invoice=invoice)
        except ServiceError:  # no address any more: the invoice stays unsent, visible as such
            continue
        sent += 1
    return f"{sent} of {len(invoice_ids)} invoices emailed"


@task()
def work_billing_run(run_id: int) -> str:
    """One worker of a billing run: bill chunks until none is left."""
    from clientbase.billing.run import billing_run_work

    return f"{billing_run_work(run_id)} chunks billed"
