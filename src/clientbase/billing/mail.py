"""Invoice mail: the PDF attached, in the client's language, sent after the action commits."""

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _
from django.utils.translation import override

from clientbase.billing.models import Invoice


def send_invoice_mail(invoice_id: int, address: str) -> None:
    """Email one issued invoice with its PDF to an address."""
    from clientbase.billing.pdf import invoice_pdf

    invoice = Invoice.objects.select_related("client").get(pk=invoice_id)
    language = invoice.snapshot.get("language") or invoice.client.language or "en"
    with override(language):
        subject = _("Invoice %(number)s") % {"number": invoice.number}
        body = _(
            "Dear %(name)s,\n\nplease find attached invoice %(number)s of %(date)s for "
            "%(total)s, due on %(due)s.\n\nKind regards,\n%(company)s"
        ) % {
            "name": invoice.snapshot.get("name", invoice.client.name),
            "number": invoice.number,
            "date": invoice.issued_on.isoformat(),
            "total": invoice.total.format(language),
            "due": invoice.due_on.isoformat(),
            "company": getattr(settings, "COMPANY_NAME", "Clientbase"),
        }
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
    message.attach(f"{invoice.number}.pdf", invoice_pdf(invoice), "application/pdf")
    message.send()
