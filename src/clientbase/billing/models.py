"""Data of billing: orders, services, invoices, payments, refunds, credit notes and the ledger."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.catalog.models import Cycle
from clientbase.core import clock
from clientbase.core.models import AppendOnly
from clientbase.core.money import Money


class PaymentMethod(models.TextChoices):
    """How money reached us or left us."""

    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CARD = "card", _("Card")
    CASH = "cash", _("Cash")
    OTHER = "other", _("Other")


class Order(models.Model):
    """A client's request for products; accepting it creates services and their first invoice."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        CANCELLED = "cancelled", _("Cancelled")
        FRAUD = "fraud", _("Fraud")

    number = models.CharField(_("order number"), max_length=32, unique=True)
    client = models.ForeignKey(
        "clients.Client", on_delete=models.PROTECT, related_name="orders", verbose_name=_("client")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    currency = models.CharField(_("currency"), max_length=3)
    payment_method = models.CharField(
        _("payment method"), max_length=16, choices=PaymentMethod.choices
    )
    promo = models.ForeignKey(
        "catalog.PromoCode",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("promo code"),
    )
    send_email = models.BooleanField(_("send the order confirmation"), default=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created"), default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("accepted or cancelled"), null=True, blank=True)
    cancel_reason = models.CharField(_("reason"), max_length=500, blank=True)
    invoice = models.ForeignKey(
        "Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    visibility_via = "client"

    class Meta:
        ordering = ["-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "cancelled", "fraud"]),
                name="order_status_valid",
            )
        ]

    def __str__(self) -> str:
        return self.number


class OrderItem(models.Model):
    """One product of an order, with its cycle, quantity, options and agreed price."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    cycle = models.CharField(_("billing cycle"), max_length=12, choices=Cycle.choices)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    options = models.JSONField(_("options"), default=dict, blank=True)  # {option code: units}
    # The price of one cycle as agreed, options included; None takes the catalogue's.
    price_override_minor = models.BigIntegerField(_("price override"), null=True, blank=True)

    visibility_via = "order__client"

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.product} × {self.quantity}"


class Service(models.Model):
    """A product a client has: what it costs per cycle and until when it is paid."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        TERMINATED = "terminated", _("Terminated")
        CANCELLED = "cancelled", _("Cancelled")

    LIVE = ("pending", "active", "suspended")

    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        related_name="services",
        verbose_name=_("client"),
    )
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="services"
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="services"
    )
    cycle = models.CharField(_("billing cycle"), max_length=12, choices=Cycle.choices)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    options = models.JSONField(_("options"), default=dict, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    # The price of one cycle, options included, before promo codes and tax.
    recurring_minor = models.BigIntegerField(_("recurring amount"), default=0)
    price_overridden = models.BooleanField(default=False)
    promo = models.ForeignKey(
        "catalog.PromoCode", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    status_reason = models.CharField(_("reason"), max_length=500, blank=True)
    registered_on = models.DateField(_("registration date"))
    # The current paid period runs from period_start to the day before next_due_on.
    period_start = models.DateField(_("period start"), null=True, blank=True)
    next_due_on = models.DateField(_("next due date"), null=True, blank=True)
    suspend_exempt_until = models.DateField(
        _("no automatic suspension until"), null=True, blank=True
    )
    cancel_at_period_end = models.BooleanField(_("cancel at end of period"), default=False)
    # Set when the account's inactivation suspended it, so reactivation restores exactly these.
    suspended_with_account = models.BooleanField(default=False)
    # Set when dunning suspended it for an unpaid invoice, so payment reactivates exactly these.
    suspended_for_debt = models.BooleanField(default=False)
    # Set by a catalogue price change meant for existing services: the next renewal is
    # invoiced at the catalogue's price of the day, which then becomes the service's price.
    reprice_at_renewal = models.BooleanField(_("renews at the catalogue price"), default=False)

    visibility_via = "client"

    class Meta:
        ordering = ["-id"]
        verbose_name = _("service")
        verbose_name_plural = _("services")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "active", "suspended", "terminated", "cancelled"]
                ),
                name="service_status_valid",
            ),
            # "Products must not be duplicated": one live line per product and client.
            models.UniqueConstraint(
                fields=["client", "product"],
                condition=Q(status__in=["pending", "active", "suspended"]),
                name="one_live_service_per_product",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_due_on"], name="service_status_due")]

    def __str__(self) -> str:
        return f"{self.product.name} #{self.pk}"

    @property
    def recurring(self) -> Money:
        return Money(self.recurring_minor, self.currency)


class FrozenInvoiceError(RuntimeError):
    """Somebody tried to change an issued invoice other than by a payment or credit."""


class InvoiceQuerySet(models.QuerySet):
    """Refuses bulk changes to issued invoices' legal fields."""

    def update(self, **kwargs):
        frozen = set(kwargs) - Invoice.CHANGES_AFTER_ISSUE
        if frozen and self.exclude(status=Invoice.Status.DRAFT).exists():
            raise FrozenInvoiceError("Issued invoices change only by payments and credits")
        return super().update(**kwargs)

    def delete(self):
        if self.exclude(status=Invoice.Status.DRAFT).exists():
            raise FrozenInvoiceError("Issued invoices are never deleted")
        return super().delete()


class Invoice(models.Model):
    """A bill: editable while draft, then numbered and changed only by money movements."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        UNPAID = "unpaid", _("Unpaid")
        PARTIALLY_PAID = "partially_paid", _("Partially paid")
        PAID = "paid", _("Paid")
        OVERDUE = "overdue", _("Overdue")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")
        COLLECTIONS = "collections", _("Collections")

    OPEN = ("unpaid", "partially_paid", "overdue", "collections")
    # What payments, credit notes and refunds may still change once the invoice is issued.
    CHANGES_AFTER_ISSUE = frozenset(
        {
            "status",
            "paid_minor",
            "credited_minor",
            "refunded_minor",
            "balance_minor",
            "paid_on",
            "sent_at",
            "version",
            "collections_floor_minor",
            "dunning_ended",
        }
    )

    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("client"),
    )
    number = models.CharField(_("invoice number"), max_length=32, blank=True, default="")
    # The number's place in its series, so bills sort by number and `*` search is exact.
    number_value = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    currency = models.CharField(_("currency"), max_length=3)
    issued_on = models.DateField(_("invoice date"), default=clock.today)
    due_on = models.DateField(_("due date"), default=clock.today)
    # Earliest service period start among the lines (the cycle start bills are sorted by).
    period_start = models.DateField(_("cycle start"), null=True, blank=True)
    # The client as the invoice was issued: name, addresses, tax ids, language.
    snapshot = models.JSONField(default=dict, blank=True)
    notes = models.TextField(_("notes to the client"), blank=True)
    # The order whose acceptance drafted it (one per service when the client asks for that).
    order = models.ForeignKey(
        "Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("order"),
    )
    # A bill for money the client pays in advance: what is paid on it becomes credit.
    credit_top_up = models.BooleanField(_("credit top-up"), default=False)
    # The overdue invoice this one charges a late fee for; a fee never draws a fee itself.
    late_fee_for = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="late_fees"
    )
    # The balance at which collections end: what is left once the minimum is paid.
    collections_floor_minor = models.BigIntegerField(null=True, blank=True)
    # Set once the client paid the minimum (or everything): no further dunning step.
    dunning_ended = models.BooleanField(default=False)
    # Why the billing run kept this draft for a person instead of issuing it.
    hold_reason = models.CharField(_("held for review"), max_length=500, blank=True)
    billing_run = models.ForeignKey(
        "BillingRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="bills"
    )
    subtotal_minor = models.BigIntegerField(_("subtotal"), default=0)
    tax_minor = models.BigIntegerField(_("tax"), default=0)
    total_minor = models.BigIntegerField(_("total"), default=0)
    paid_minor = models.BigIntegerField(_("paid"), default=0)
    credited_minor = models.BigIntegerField(_("credited"), default=0)
    refunded_minor = models.BigIntegerField(_("refunded"), default=0)
    # Always the sum of the invoice's receivable ledger entries (kept by the services).
    balance_minor = models.BigIntegerField(_("balance due"), default=0)
    paid_on = models.DateField(_("paid on"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    version = models.PositiveIntegerField(default=1)

    objects = InvoiceQuerySet.as_manager()
    visibility_via = "client"

    class Meta:
        ordering = ["-id"]
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "draft",
                        "unpaid",
                        "partially_paid",
                        "paid",
                        "overdue",
                        "cancelled",
                        "refunded",
                        "collections",
                    ]
                ),
                name="invoice_status_valid",
            ),
            models.UniqueConstraint(
                fields=["number"], condition=~Q(number=""), name="invoice_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | ~Q(number=""), name="issued_invoice_has_number"
            ),
        ]
        indexes = [
            models.Index(fields=["client", "status"], name="invoice_client_status"),
            models.Index(fields=["number_value"], name="invoice_number_value"),
            models.Index(fields=["status", "due_on"], name="invoice_status_due"),
            models.Index(fields=["issued_on"], name="invoice_issued_on"),
        ]

    def __str__(self) -> str:
        return self.number or _("Draft invoice #%(id)s") % {"id": self.pk}

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        # Fields money movements keep may always change; anything else only on a draft.
        guarded = update_fields is None or set(update_fields) - self.CHANGES_AFTER_ISSUE
        if guarded and not self._state.adding:
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored not in (None, self.Status.DRAFT):
                raise FrozenInvoiceError("Issued invoices change only by payments and credits")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if not self.is_draft:
            raise FrozenInvoiceError("Issued invoices are never deleted")
        return super().delete(*args, **kwargs)

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    @property
    def total(self) -> Money:
        return Money(self.total_minor, self.currency)

    @property
    def balance(self) -> Money:
        return Money(self.balance_minor, self.currency)

    def days_overdue(self, today=None) -> int:
        """Days since the due date while money is owed, else 0."""
        if self.status not in self.OPEN or self.balance_minor <= 0:
            return 0
        return max(0, ((today or clock.today()) - self.due_on).days)


class InvoiceLineQuerySet(models.QuerySet):
    """Refuses bulk changes to the lines of issued invoices."""

    def _refuse_if_issued(self) -> None:
        if self.exclude(invoice__status=Invoice.Status.DRAFT).exists():
            raise FrozenInvoiceError("Lines of issued invoices never change")

    def update(self, **kwargs):
        self._refuse_if_issued()
        return super().update(**kwargs)

    def delete(self):
        self._refuse_if_issued()
        return super().delete()


class InvoiceLine(models.Model):
    """A line of an invoice, computed in Decimal and rounded half-up once to minor units."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    service = models.ForeignKey(
        Service, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoice_lines"
    )
    description = models.CharField(_("description"), max_length=500)
    period_start = models.DateField(_("from"), null=True, blank=True)
    period_end = models.DateField(_("to"), null=True, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3, default=1)
    # In major units with up to four decimals, as catalogues and contracts write prices.
    unit_price = models.DecimalField(_("unit price"), max_digits=18, decimal_places=4)
    discount_percent = models.DecimalField(
        _("discount, %"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    taxable = models.BooleanField(_("taxable"), default=True)
    tax_rate = models.DecimalField(_("tax, %"), max_digits=6, decimal_places=3, default=Decimal(0))
    tax_inclusive = models.BooleanField(default=False)
    net_minor = models.BigIntegerField(_("amount"), default=0)
    tax_minor = models.BigIntegerField(_("tax"), default=0)

    objects = InvoiceLineQuerySet.as_manager()
    visibility_via = "invoice__client"

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100),
                name="line_discount_in_range",
            )
        ]

    def __str__(self) -> str:
        return self.description

    def save(self, *args, **kwargs):
        self._refuse_if_issued()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_if_issued()
        return super().delete(*args, **kwargs)

    def _refuse_if_issued(self) -> None:
        status = Invoice.objects.filter(pk=self.invoice_id).values_list("status", flat=True).first()
        if status not in (None, Invoice.Status.DRAFT):
            raise FrozenInvoiceError("Lines of issued invoices never change")


class Payment(models.Model):
    """Money received from a client, spread over invoices; what is left goes to credit."""

    number = models.CharField(_("payment number"), max_length=32, unique=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("client"),
    )
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices)
    amount_minor = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    received_on = models.DateField(_("received on"), default=clock.today)
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    to_credit_minor = models.BigIntegerField(_("to credit balance"), default=0)
    refunded_minor = models.BigIntegerField(_("refunded"), default=0)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )

    visibility_via = "client"

    class Meta:
        ordering = ["-id"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=Q(refunded_minor__lte=models.F("amount_minor")),
                name="payment_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class PaymentAllocation(models.Model):
    """The part of a payment that settled one invoice."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    amount_minor = models.BigIntegerField()
    refunded_minor = models.BigIntegerField(default=0)

    visibility_via = "payment__client"

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="allocation_positive")
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} → {self.invoice_id}"


class Refund(models.Model):
    """Money given back: out to the client, or kept as credit."""

    class Destination(models.TextChoices):
        CREDIT = "credit", _("To credit balance")
        OUT = "out", _("Paid out to the client")

    number = models.CharField(_("refund number"), max_length=32, unique=True)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="refunds")
    # The invoice whose payment is refunded; none when credit balance is paid out.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    destination = models.CharField(_("refund to"), max_length=8, choices=Destination.choices)
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices, blank=True)
    amount_minor = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=500)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )

    visibility_via = "client"

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_positive")
        ]

    def __str__(self) -> str:
        return self.number


class CreditNote(models.Model):
    """A numbered reduction of an issued invoice; beyond what is owed it becomes credit."""

    class Kind(models.TextChoices):
        CREDIT_NOTE = "credit_note", _("Credit note")
        WRITE_OFF = "write_off", _("Write-off")

    number = models.CharField(_("number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    client = models.ForeignKey(
        "clients.Client", on_delete=models.PROTECT, related_name="credit_notes"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount_minor = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=500)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )

    visibility_via = "client"

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="credit_note_positive")
        ]

    def __str__(self) -> str:
        return self.number


class Receipt(models.Model):
    """An income voucher, made when an invoice becomes paid (BIL-17)."""

    number = models.CharField(_("receipt number"), max_length=32, unique=True)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="receipts")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="receipt")
    amount_minor = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    created_at = models.DateTimeField(default=clock.now)

    visibility_via = "client"

    def __str__(self) -> str:
        return self.number


class LedgerHead(models.Model):
    """The end of the hash chain; locking it orders every posting."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"{self.last_seq}"


class LedgerEntry(AppendOnly):
    """One money movement on a client's account, chained to the one before by its hash.

    `amount_minor` is signed from the client's side: positive adds to what the client owes,
    negative reduces it. Account `receivable` entries belong to one invoice; `credit`
    entries move the client's credit balance (a negative sum is credit held).
    """

    class Account(models.TextChoices):
        RECEIVABLE = "receivable", _("Invoices")
        CREDIT = "credit", _("Credit balance")

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice issued")
        PAYMENT = "payment", _("Payment")
        OVERPAYMENT = "overpayment", _("Overpayment to credit")
        CREDIT_APPLIED = "credit_applied", _("Credit applied")
        CREDIT_NOTE = "credit_note", _("Credit note")
        WRITE_OFF = "write_off", _("Write-off")
        REFUND = "refund", _("Refund")
        REFUND_RELEASE = "refund_release", _("Refunded invoice released")
        ADJUSTMENT = "adjustment", _("Adjustment")
        CANCELLATION = "cancellation", _("Invoice cancelled")
        PRORATION_CREDIT = "proration_credit", _("Downgrade credit")
        TOP_UP = "top_up", _("Credit top-up")

    seq = models.BigIntegerField(unique=True)
    client = models.ForeignKey(
        "clients.Client", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    account = models.CharField(max_length=10, choices=Account.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # The document behind the movement: a payment, refund or credit-note number.
    reference = models.CharField(max_length=40, blank=True)
    posted_at = models.DateTimeField(default=clock.now)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    visibility_via = "client"

    class Meta:
        ordering = ["seq"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(fields=["client", "seq"], name="ledger_client_seq"),
            models.Index(fields=["invoice"], name="ledger_invoice"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(account="credit", invoice__isnull=True)
                | Q(account="receivable", invoice__isnull=False),
                name="ledger_account_matches_invoice",
            )
        ]

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class BillingRun(models.Model):
    """One generation of the invoices that fall due, split into chunks of clients."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Done with errors")

    run_date = models.DateField(_("run for"))
    # Services whose next due date is on or before this day are invoiced.
    bill_until = models.DateField(_("invoices due up to"))
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started"), default=clock.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Updated after each chunk; a run with no news for long was interrupted.
    heartbeat_at = models.DateTimeField(default=clock.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(_("started from"), max_length=8)  # cron, staff, api
    total_clients = models.PositiveIntegerField(_("clients"), default=0)
    done_clients = models.PositiveIntegerField(_("clients done"), default=0)
    invoices = models.PositiveIntegerField(_("invoices"), default=0)
    held = models.PositiveIntegerField(_("held for review"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("billing run")
        verbose_name_plural = _("billing runs")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["running", "done", "failed"]),
                name="billingrun_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.run_date}"


class BillingRunChunk(models.Model):
    """Clients a worker bills in one transaction; claimed, done, or failed as a whole."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    client_ids = models.JSONField(default=list)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        indexes = [models.Index(fields=["run", "state"], name="billingchunk_run_state")]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="billingchunk_position"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "running", "done"]),
                name="billingchunk_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.position}"


class BillingRunError(models.Model):
    """A client the run could not bill, and why; the others went on."""

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="failures")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="+")
    reason = models.TextField(_("reason"))
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.reason[:80]


class BilledPeriod(models.Model):
    """Proof that a service's period was invoiced: the key that makes billing exactly-once."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="billed_periods")
    period_start = models.DateField()
    period_end = models.DateField()
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="billed_periods")

    class Meta:
        ordering = ["service", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "period_start"], name="billedperiod_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.period_start}–{self.period_end}"


class BankStatement(models.Model):
    """An imported bank statement file: what it held and what became of its lines."""

    format = models.CharField(_("format"), max_length=8)
    account = models.CharField(_("account"), max_length=64, blank=True)
    filename = models.CharField(_("file"), max_length=255, blank=True)
    imported_at = models.DateTimeField(_("imported"), default=clock.now)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    lines = models.PositiveIntegerField(_("lines"), default=0)
    posted = models.PositiveIntegerField(_("posted"), default=0)
    suspense = models.PositiveIntegerField(_("in suspense"), default=0)
    outgoing = models.PositiveIntegerField(_("outgoing"), default=0)
    duplicates = models.PositiveIntegerField(_("already imported"), default=0)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("bank statement")
        verbose_name_plural = _("bank statements")

    def __str__(self) -> str:
        return f"#{self.pk} {self.filename}"


class BankPayment(models.Model):
    """One line of a bank statement: posted as a payment, or waiting for a clerk."""

    class State(models.TextChoices):
        POSTED = "posted", _("Posted automatically")
        SUSPENSE = "suspense", _("In suspense")
        ASSIGNED = "assigned", _("Assigned by a clerk")
        IGNORED = "ignored", _("Not a client payment")
        OUTGOING = "outgoing", _("Outgoing")

    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="items")
    line_no = models.PositiveIntegerField(_("line"))
    account = models.CharField(max_length=64, blank=True)
    # The bank's id of the transaction: the same one imported again is recognised.
    external_id = models.CharField(max_length=100)
    booked_on = models.DateField(_("booked on"))
    amount_minor = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    payer_name = models.CharField(_("payer"), max_length=300, blank=True)
    payer_tax_id = models.CharField(_("payer's tax id"), max_length=32, blank=True)
    payer_account = models.CharField(_("payer's account"), max_length=64, blank=True)
    purpose = models.TextField(_("purpose"), blank=True)
    state = models.CharField(_("state"), max_length=8, choices=State.choices)
    reason = models.CharField(_("why it waits"), max_length=500, blank=True)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="bank_payments"
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="bank_lines"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("bank payment")
        verbose_name_plural = _("bank payments")
        indexes = [models.Index(fields=["state", "booked_on"], name="bankpayment_state")]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"], name="bankpayment_once_per_bank_id"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["posted", "suspense", "assigned", "ignored", "outgoing"]),
                name="bankpayment_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.booked_on} {self.amount}"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class DunningScenario(models.Model):
    """Timed steps taken on an overdue invoice, for the clients of some groups (or all)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    # The scenario of clients whose group has none of its own.
    is_default = models.BooleanField(_("for clients of other groups"), default=False)
    groups = models.ManyToManyField(
        "clients.ClientGroup",
        blank=True,
        related_name="dunning_scenarios",
        verbose_name=_("groups"),
    )
    # Share of the overdue balance at hand-over to collections the client must pay to leave.
    minimum_percent = models.PositiveSmallIntegerField(
        _("minimum payment to leave collections, %"), default=100
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("dunning scenario")
        verbose_name_plural = _("dunning scenarios")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_dunning"
            ),
            models.CheckConstraint(
                condition=Q(minimum_percent__gte=1, minimum_percent__lte=100),
                name="dunning_minimum_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DunningStep(models.Model):
    """One step of a scenario: what happens how many days after the due date."""

    class Action(models.TextChoices):
        REMIND = "remind", _("Send a reminder")
        FEE = "fee", _("Charge a late fee")
        SUSPEND = "suspend", _("Suspend the services")
        COLLECTIONS = "collections", _("Hand to collections")
        WRITE_OFF = "write_off", _("Write off")

    scenario = models.ForeignKey(DunningScenario, on_delete=models.CASCADE, related_name="steps")
    # Days after the due date; a negative number is a notice before it.
    day = models.SmallIntegerField(_("days after the due date"))
    action = models.CharField(_("action"), max_length=12, choices=Action.choices)
    # A reminder's mail, with $client, $invoice, $balance, $due_on and $days filled in.
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"), blank=True)
    fee_amount = models.DecimalField(
        _("fixed fee"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    fee_percent = models.DecimalField(
        _("fee, percent of the balance"), max_digits=5, decimal_places=2, null=True, blank=True
    )

    class Meta:
        ordering = ["scenario", "day", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["remind", "fee", "suspend", "collections", "write_off"]),
                name="dunningstep_action_valid",
            ),
            models.UniqueConstraint(
                fields=["scenario", "day", "action"], name="dunningstep_once_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day:+d} {self.action}"

    @property
    def days_away(self) -> int:
        """Days from the due date, before or after."""
        return abs(self.day)


class DunningStepDone(models.Model):
    """A step taken (or skipped, with why) on one invoice: never twice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="dunning_done")
    step = models.ForeignKey(DunningStep, on_delete=models.CASCADE, related_name="done")
    done_on = models.DateField()
    result = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["done_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="dunning_step_once")
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.step_id}"


class CreditLimit(models.Model):
    """How much a client may owe in one currency (or units of a non-currency balance)."""

    client = models.ForeignKey(
        "clients.Client", on_delete=models.CASCADE, related_name="credit_limits"
    )
    currency = models.CharField(_("currency or unit"), max_length=3)
    # None: unlimited.
    limit_minor = models.BigIntegerField(_("limit"), null=True, blank=True)
    floor_minor = models.BigIntegerField(_("floor"), default=0)
    fixed_thresholds = models.JSONField(_("fixed thresholds"), default=list, blank=True)
    percent_thresholds = models.JSONField(_("thresholds, %"), default=list, blank=True)
    enforce = models.BooleanField(_("enforce the limit"), default=True)
    # Thresholds crossed and not yet fallen back below, so each notifies once per crossing.
    crossed = models.JSONField(default=list, blank=True)

    visibility_via = "client"

    class Meta:
        ordering = ["client", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["client", "currency"], name="one_limit_per_currency")
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.currency}"
