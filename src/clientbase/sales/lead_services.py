"""Every write to leads, their contacts, lead distribution and web forms (SAL-1, SAL-6, SAL-9)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_countries import countries

from clientbase.accounts.models import OrgUnit, User
from clientbase.clients.models import Client
from clientbase.clients.services import client_create, contact_add, note_add
from clientbase.clients.validation import normalize_email, normalize_phone, normalize_tax_id
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import Money, currency_exponent
from clientbase.core.numbering import next_number, register_series
from clientbase.core.visibility import can_see, may_assign
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import (
    Activity,
    Deal,
    DistributionLog,
    DistributionRule,
    Lead,
    LeadContact,
    Quote,
    WebForm,
    WebFormSubmission,
)
from clientbase.sales.pipelines import default_pipeline, first_stage, stage_for_state

register_series("lead", prefix="L", padding=6)
register_event_type(
    "lead.converted",
    EventCategory.SALES,
    gettext_lazy("Lead %(reference)s converted into this client"),
)

OPEN_STATUSES = (Lead.Status.NEW, Lead.Status.IN_PROGRESS, Lead.Status.APPOINTMENT)
EDITABLE = (
    "kind",
    "civility",
    "name",
    "company",
    "position_title",
    "email",
    "phone",
    "tax_id",
    "street",
    "postcode",
    "city",
    "region",
    "country",
    "language",
    "source",
    "campaign",
    "potential_minor",
    "currency",
    "needs",
    "next_step",
    "next_step_on",
    "owner",
    "org_unit",
)
_TEXT_FIELDS = (
    "civility",
    "name",
    "company",
    "position_title",
    "street",
    "postcode",
    "city",
    "region",
    "source",
    "campaign",
    "next_step",
)


# --- cleaning -------------------------------------------------------------------------------


def _normalized(errors: dict, field: str, check) -> str | None:
    try:
        return check()
    except ValidationError as refused:
        errors[field] = refused.messages
        return None


def open_leads_with_email(email_key: str, *, exclude_id: int | None = None):
    """Open leads that already use an address (compared lower-cased)."""
    found = Lead.objects.filter(email_key=email_key, status__in=OPEN_STATUSES)
    return found.exclude(pk=exclude_id) if exclude_id else found


def client_with_email(email: str) -> Client | None:
    """The client that uses an address, if any (the unique lower(email) index answers)."""
    if not email:
        return None
    return (
        Client.objects.annotate(email_key=Lower("email"))
        .filter(email_key=email.lower())
        .order_by()
        .first()
    )


def _email_clash(lead: Lead, by: User | None) -> str:
    """Why the lead's email may not be saved (an open lead or a client has it), or ""."""
    if not lead.email_key:
        return ""
    other = open_leads_with_email(lead.email_key, exclude_id=lead.pk).first()
    if other is not None:
        if by is None or can_see(other, by):
            return _("Lead %(number)s (%(name)s) already uses this email.") % {
                "number": other.number,
                "name": other.name,
            }
        return _("A lead outside your view already uses this email.")
    client = client_with_email(lead.email)
    if client is not None and client.pk != lead.client_id:
        if by is None or can_see(client, by):
            return _("Client %(number)s (%(name)s) already uses this email.") % {
                "number": client.number,
                "name": client.name,
            }
        return _("A client outside your view already uses this email.")
    return ""


def _clean(lead: Lead, by: User | None, *, check_email_clash: bool = True) -> None:
    errors: dict[str, list[str]] = {}
    for field in _TEXT_FIELDS:
        setattr(lead, field, " ".join((getattr(lead, field) or "").split()))
    lead.needs = (lead.needs or "").replace("\x00", "").strip()
    if not lead.name:
        errors["name"] = [_("A lead needs a name.")]
    if lead.kind not in Lead.Kind.values:
        errors["kind"] = [_("Choose individual or company.")]
    lead.country = (lead.country or "").strip().upper()
    if lead.country and lead.country not in countries:
        errors["country"] = [_("Unknown country code; use two letters, e.g. FR.")]
    country = lead.country if "country" not in errors else ""
    email = _normalized(errors, "email", lambda: normalize_email(lead.email or ""))
    if email is not None:
        lead.email = email
        lead.email_key = email.lower()
    phone = _normalized(errors, "phone", lambda: normalize_phone(lead.phone or "", country=country))
    if phone is not None:
        lead.phone = phone
    if lead.kind in Lead.Kind.values:
        tax_id = _normalized(
            errors,
            "tax_id",
            lambda: normalize_tax_id(lead.tax_id or "", country=country, kind=lead.kind),
        )
        if tax_id is not None:
            lead.tax_id = tax_id
    try:
        currency_exponent(lead.currency)
    except ValueError:
        errors["currency"] = [_("Unknown currency code.")]
    if not isinstance(lead.potential_minor, int) or lead.potential_minor < 0:
        errors["potential_minor"] = [_("The potential cannot be negative.")]
    if lead.language not in dict(settings.LANGUAGES):
        errors["language"] = [_("Choose one of the languages offered.")]
    if lead.org_unit_id is None:
        errors["org_unit"] = [_("Choose the unit the lead belongs to.")]
    if check_email_clash and "email" not in errors and (clash := _email_clash(lead, by)):
        errors["email"] = [clash]
    # A lead left without an owner in one's own unit waits for the distribution rules.
    for_distribution = (
        lead.owner_id is None and by is not None and lead.org_unit_id == by.org_unit_id
    )
    if (
        by is not None
        and lead.org_unit_id is not None
        and not for_distribution
        and not may_assign(by, owner=lead.owner, org_unit=lead.org_unit)
    ):
        errors["owner"] = [_("You can give leads only to people and units within your reach.")]
    if errors:
        raise ServiceError(errors=errors)


# --- leads ----------------------------------------------------------------------------------


def lead_create(*, by: User | None, distribute: bool = True, **fields) -> Lead:
    """Add a lead at the first stage of the lead pipeline; without an owner it is distributed."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"lead_create() got unexpected fields {sorted(unknown)}")
    if "owner" not in fields:
        fields["owner"] = by
    owner = fields["owner"]
    if fields.get("org_unit") is None:
        fields["org_unit"] = (owner.org_unit if owner else None) or (by.org_unit if by else None)
    fields.setdefault("currency", settings.DEFAULT_CURRENCY)
    now = clock.now()
    lead = Lead(**fields, created_at=now, stage_entered_at=now)
    lead.stage = first_stage(default_pipeline("lead"))
    lead.status = lead.stage.state if lead.stage.state in Lead.Status.values else Lead.Status.NEW
    _clean(lead, by)
    with transaction.atomic():
        lead.number = next_number("lead").text
        lead.save()
        audit_create(lead, by=by)
        if lead.owner_id is None and distribute:
            distribute_lead(lead=lead, trigger=DistributionLog.Trigger.ARRIVAL)
    return lead


def _locked(lead: Lead, version: int | None) -> Lead:
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    if version is not None and locked.version != version:
        raise ConflictError(
            _("Someone changed this lead meanwhile: reload it and make your change again.")
        )
    return locked


def lead_update(*, by: User, lead: Lead, version: int | None = None, **fields) -> Lead:
    """Change a lead's details; a stale `version` is refused as a conflict."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"lead_update() got unexpected fields {sorted(unknown)}")
    with transaction.atomic():
        lead = _locked(lead, version)
        before = snapshot(lead)
        for name, value in fields.items():
            setattr(lead, name, value)
        _clean(lead, by, check_email_clash="email" in fields and lead.status in OPEN_STATUSES)
        lead.version += 1
        lead.save()
        audit_update(lead, before, by=by)
    return lead


def lead_contact_add(
    *,
    by: User,
    lead: Lead,
    name: str,
    position_title: str = "",
    email: str = "",
    phone: str = "",
) -> LeadContact:
    """Add another person at the lead's company."""
    errors: dict[str, list[str]] = {}
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = [_("A contact needs a name.")]
    email = _normalized(errors, "email", lambda: normalize_email(email or "")) or ""
    phone = _normalized(errors, "phone", lambda: normalize_phone(phone or "", country=lead.country))
    if errors:
        raise ServiceError(errors=errors)
    contact = LeadContact(
        lead=lead,
        name=name[:200],
        position_title=" ".join((position_title or "").split())[:100],
        email=email,
        phone=phone or "",
    )
    with transaction.atomic():
        contact.save()
        audit_create(contact, by=by)
    return contact


def lead_contact_remove(*, by: User, contact: LeadContact) -> None:
    """Remove a person from a lead."""
    with transaction.atomic():
        audit_delete(contact, by=by)
        contact.delete()


# --- conversion -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadConversion:
    """What converting a lead made: the client (new or existing) and the deal, if any."""

    lead: Lead
    client: Client
    deal: Deal | None
    created: bool


class ClientExists(ServiceError):
    """Conversion refused: a client already has the lead's email; attach the lead to it."""

    def __init__(self, client: Client, message: str):
        super().__init__(message, field="email")
        self.client = client


def _split_name(full: str) -> tuple[str, str]:
    parts = full.split()
    if len(parts) < 2:
        return "", full
    return " ".join(parts[:-1]), parts[-1]


def _client_fields(lead: Lead, by: User) -> dict:
    fields = {
        "kind": lead.kind,
        "email": lead.email,
        "phone": lead.phone,
        "tax_id": lead.tax_id,
        "street": lead.street,
        "postcode": lead.postcode,
        "city": lead.city,
        "country": lead.country,
        "currency": lead.currency,
        "language": lead.language,
        "owner": lead.owner or by,
        "org_unit": lead.org_unit,
        "source": lead.source[:100],
        "utm_campaign": lead.campaign[:100],
    }
    if lead.kind == Lead.Kind.INDIVIDUAL:
        fields["first_name"], fields["last_name"] = _split_name(lead.name)
    else:
        fields["company_name"] = lead.company or lead.name
        fields["name"] = lead.company or lead.name
    return fields


def _carry_over(lead: Lead, client: Client, by: User, *, new_client: bool) -> None:
    """Contacts (onto a new client), needs and history of the lead, onto the client."""
    people = []
    if new_client:
        people = [(lead.name, lead.position_title, lead.email, lead.phone)] if lead.company else []
        people += [(c.name, c.position_title, c.email, c.phone) for c in lead.contacts.all()]
    for name, position, email, phone in people:
        first, last = _split_name(name)
        contact_add(
            client=client,
            by=by,
            last_name=last,
            first_name=first,
            position=position,
            email=email,
            phones={"work": phone} if phone else None,
        )
    lines = []
    if lead.needs:
        lines.append(_("Needs: %(needs)s") % {"needs": lead.needs})
    if lead.region:
        lines.append(_("Region: %(region)s") % {"region": lead.region})
    if lines:
        lines.insert(0, _("From lead %(number)s.") % {"number": lead.number})
        note_add(client=client, body="\n".join(lines), important=True, by=by)
    _relink(lead, client)


def lead_convert(
    *,
    by: User,
    lead: Lead,
    create_deal: bool = True,
    deal_name: str = "",
    deal_value: Money | None = None,
    existing_client: Client | None = None,
) -> LeadConversion:
    """Make the lead a client (or attach it to `existing_client`) and, if asked, open a deal.

    Run twice, or by two people at once, it converts once: the lead row is locked and a
    converted lead answers with its first conversion.
    """
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        if lead.client_id is not None:
            return LeadConversion(
                lead=lead,
                client=lead.client,
                deal=lead.deals.order_by("id").first(),
                created=False,
            )
        if existing_client is not None:
            if not can_see(existing_client, by):
                raise ServiceError(_("No client you may see is this one."), field="existing_client")
            if Lead.objects.filter(client=existing_client).exists():
                raise ServiceError(
                    _("This client already came from another lead."), field="existing_client"
                )
            client, created_client = existing_client, False
        else:
            if not lead.email:
                raise ServiceError(
                    _("A client needs an email address: add the lead's email first."),
                    field="email",
                )
            found = client_with_email(lead.email)
            if found is not None:
                raise ClientExists(
                    found,
                    _(
                        "Client %(number)s (%(name)s) already has this email: "
                        "attach the lead to it instead."
                    )
                    % {"number": found.number, "name": found.name},
                )
            client = client_create(by=by, **_client_fields(lead, by))
            created_client = True
        before = snapshot(lead)
        _carry_over(lead, client, by, new_client=created_client)
        now = clock.now()
        customer = stage_for_state(lead.stage.pipeline, Lead.Status.CUSTOMER)
        if customer is not None and customer.pk != lead.stage_id:
            lead.stage, lead.stage_entered_at = customer, now
        lead.status = Lead.Status.CUSTOMER
        lead.client = client
        lead.converted_at = now
        lead.version += 1
        lead.save()
        audit_update(lead, before, by=by)
        record_event(
            "lead.converted",
            by=by,
            client=client,
            subject=lead,
            reference=lead.number,
            details={"name": lead.name},
        )
        deal = None
        if create_deal:
            from clientbase.sales.deal_services import deal_create

            if deal_value is None and lead.potential_minor:
                deal_value = Money(lead.potential_minor, lead.currency)
            deal = deal_create(
                by=by,
                name=(deal_name or "").strip() or str(lead),
                value=deal_value,
                campaign=lead.campaign,
                client=client,
                lead=lead,
                owner=lead.owner or by,
            )
    return LeadConversion(lead=lead, client=client, deal=deal, created=True)


def _relink(lead: Lead, client: Client) -> None:
    """Attach the lead's history to a client that already existed."""
    Activity.objects.filter(lead=lead, client__isnull=True).update(client=client)
    Deal.objects.filter(lead=lead, client__isnull=True).update(client=client)
    Quote.objects.filter(lead=lead, client__isnull=True).update(client=client)


# --- distribution ---------------------------------------------------------------------------


def _matching_rule(lead: Lead) -> DistributionRule | None:
    return (
        DistributionRule.objects.filter(active=True)
        .filter(Q(source="") | Q(source__iexact=lead.source))
        .filter(Q(campaign="") | Q(campaign__iexact=lead.campaign))
        .order_by("position", "id")
        .first()
    )


def _next_member(rule: DistributionRule) -> User | None:
    members = list(rule.members.filter(is_active=True).order_by("id"))
    if not members:
        return None
    ids = [m.pk for m in members]
    # Members in turn order: those after the last assignee, then from the start.
    after = ids.index(rule.last_assignee_id) + 1 if rule.last_assignee_id in ids else 0
    in_turn = members[after:] + members[:after]
    if rule.method == DistributionRule.Method.LEAST_LOAD:
        load = dict(
            Lead.objects.filter(owner__in=ids, status__in=OPEN_STATUSES)
            .values("owner")
            .annotate(n=Count("id"))
            .values_list("owner", "n")
        )
        return min(in_turn, key=lambda m: load.get(m.pk, 0))
    return in_turn[0]


def distribute_lead(*, lead: Lead, trigger: str) -> DistributionLog | None:
    """Give an ownerless lead to the next person of the first matching rule, and log it.

    The rule's row is locked, so two leads arriving at once go to two people in turn.
    """
    with transaction.atomic():
        rule = _matching_rule(lead)
        if rule is None:
            return None
        rule = DistributionRule.objects.select_for_update().get(pk=rule.pk)
        locked = Lead.objects.select_for_update().get(pk=lead.pk)
        if locked.owner_id is not None:
            return None
        assignee = _next_member(rule)
        if assignee is None:
            return None
        locked.owner = assignee
        if assignee.org_unit_id is not None:
            locked.org_unit_id = assignee.org_unit_id
        locked.version += 1
        locked.save(update_fields=["owner", "org_unit", "version"])
        # The caller's copy follows, so it shows who got the lead.
        lead.owner, lead.org_unit_id, lead.version = assignee, locked.org_unit_id, locked.version
        rule.last_assignee = assignee
        rule.save(update_fields=["last_assignee"])
        return DistributionLog.objects.create(
            lead=lead, rule=rule, assignee=assignee, trigger=trigger, at=clock.now()
        )


def leads_distribute() -> int:
    """The daily job: distribute open leads that still have no owner; returns how many."""
    count = 0
    waiting = Lead.objects.filter(owner__isnull=True, status__in=OPEN_STATUSES).order_by("id")
    for lead in waiting.iterator():
        if distribute_lead(lead=lead, trigger=DistributionLog.Trigger.SCHEDULE) is not None:
            count += 1
    return count


def distribution_rule_save(
    *,
    by: User,
    rule: DistributionRule | None = None,
    name: str,
    members: list[User],
    source: str = "",
    campaign: str = "",
    method: str = DistributionRule.Method.ROUND_ROBIN,
    position: int = 0,
    active: bool = True,
) -> DistributionRule:
    """Create or change a distribution rule."""
    errors: dict[str, list[str]] = {}
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = [_("Give the rule a name.")]
    elif DistributionRule.objects.filter(name=name).exclude(pk=rule.pk if rule else None).exists():
        errors["name"] = [_("Another rule has this name.")]
    if method not in DistributionRule.Method.values:
        errors["method"] = [_("Choose round robin or fewest open leads.")]
    if not members:
        errors["members"] = [_("Choose at least one person to receive the leads.")]
    elif any(not m.is_active for m in members):
        errors["members"] = [_("Choose only active people.")]
    if errors:
        raise ServiceError(errors=errors)
    with transaction.atomic():
        creating = rule is None
        if creating:
            rule = DistributionRule()
        else:
            rule = DistributionRule.objects.select_for_update().get(pk=rule.pk)
        before = {} if creating else snapshot(rule)
        rule.name, rule.source, rule.campaign = name, source.strip(), campaign.strip()
        rule.method, rule.position, rule.active = method, max(0, int(position)), active
        rule.save()
        rule.members.set(members)
        if creating:
            audit_create(rule, by=by)
        else:
            audit_update(rule, before, by=by)
    return rule


def distribution_rule_delete(*, by: User, rule: DistributionRule) -> None:
    """Remove a rule; its log stays, without the rule."""
    with transaction.atomic():
        audit_delete(rule, by=by)
        rule.delete()


# --- web forms ------------------------------------------------------------------------------

WEBFORM_KEY_PREFIX = "wf_"
THROTTLE_WINDOW = dt.timedelta(hours=1)
SUBMISSION_FIELDS = ("name", "company", "email", "phone", "message", "city", "country")
FIELD_MAX = {"name": 200, "company": 200, "email": 254, "phone": 32, "city": 100, "country": 2}
MESSAGE_MAX = 5000


def webform_digest(secret: str) -> str:
    """The stored form of a web form's secret (long and random, so no salt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedWebForm:
    """A web form and its secret, which is shown once and never again."""

    form: WebForm
    secret: str


def _webform_clean(
    *, name: str, org_unit: OrgUnit | None, currency: str, per_hour_limit: int, exclude=None
) -> str:
    errors: dict[str, list[str]] = {}
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = [_("Give the form a name.")]
    elif WebForm.objects.filter(name=name).exclude(pk=exclude).exists():
        errors["name"] = [_("Another web form has this name.")]
    if org_unit is None:
        errors["org_unit"] = [_("Choose the unit its leads belong to.")]
    try:
        currency_exponent(currency)
    except ValueError:
        errors["currency"] = [_("Unknown currency code.")]
    if not 1 <= per_hour_limit <= 10_000:
        errors["per_hour_limit"] = [_("Allow from 1 to 10,000 submissions an hour.")]
    if errors:
        raise ServiceError(errors=errors)
    return name


def webform_create(
    *,
    by: User,
    name: str,
    org_unit: OrgUnit | None,
    currency: str,
    source: str = "web form",
    campaign: str = "",
    per_hour_limit: int = 20,
) -> IssuedWebForm:
    """Make a web form with a new secret; only the secret's digest is kept."""
    name = _webform_clean(
        name=name, org_unit=org_unit, currency=currency, per_hour_limit=per_hour_limit
    )
    secret = WEBFORM_KEY_PREFIX + secrets.token_urlsafe(24)
    with transaction.atomic():
        form = WebForm.objects.create(
            name=name,
            key_prefix=secret[:10],
            key_digest=webform_digest(secret),
            source=source.strip() or "web form",
            campaign=campaign.strip(),
            org_unit=org_unit,
            currency=currency,
            per_hour_limit=per_hour_limit,
        )
        audit_create(form, by=by)
    return IssuedWebForm(form=form, secret=secret)


def webform_update(*, by: User, form: WebForm, **fields) -> WebForm:
    """Change a web form's settings (not its secret)."""
    allowed = {"name", "org_unit", "currency", "source", "campaign", "per_hour_limit", "active"}
    if set(fields) - allowed:
        raise TypeError(f"webform_update() got unexpected fields {sorted(set(fields) - allowed)}")
    with transaction.atomic():
        form = WebForm.objects.select_for_update().get(pk=form.pk)
        before = snapshot(form)
        for key, value in fields.items():
            setattr(form, key, value)
        form.name = _webform_clean(
            name=form.name,
            org_unit=form.org_unit,
            currency=form.currency,
            per_hour_limit=form.per_hour_limit,
            exclude=form.pk,
        )
        form.save()
        audit_update(form, before, by=by)
    return form


def webform_rotate(*, by: User, form: WebForm) -> IssuedWebForm:
    """Give a web form a new secret; the old one stops working at once."""
    secret = WEBFORM_KEY_PREFIX + secrets.token_urlsafe(24)
    with transaction.atomic():
        form = WebForm.objects.select_for_update().get(pk=form.pk)
        before = snapshot(form)
        form.key_prefix, form.key_digest = secret[:10], webform_digest(secret)
        form.save(update_fields=["key_prefix", "key_digest"])
        audit_update(form, before, by=by)
    return IssuedWebForm(form=form, secret=secret)


def webform_find(secret: str) -> WebForm | None:
    """The active form a secret opens, or None."""
    if not secret or len(secret) > 200:
        return None
    return WebForm.objects.filter(key_digest=webform_digest(secret), active=True).first()


class Throttled(Exception):
    """Too many submissions from one address this hour."""

    def __init__(self, retry_after: int):
        super().__init__("throttled")
        self.retry_after = retry_after


@dataclass(frozen=True)
class WebFormResult:
    """What a submission did: the lead it made or found, and whether it was a repeat."""

    submission: WebFormSubmission
    lead: Lead | None
    duplicate: bool


def _submitted(data: dict) -> dict[str, str]:
    cleaned = {}
    for field in SUBMISSION_FIELDS:
        value = data.get(field, "")
        value = value if isinstance(value, str) else str(value) if value is not None else ""
        value = value.replace("\x00", "").strip()
        limit = MESSAGE_MAX if field == "message" else FIELD_MAX[field]
        cleaned[field] = value[:limit] if field == "message" else value
        if len(value) > limit and field != "message":
            raise ServiceError(_("At most %(max)d characters.") % {"max": limit}, field=field)
    return cleaned


def _throttle(form: WebForm, ip: str | None) -> None:
    since = clock.now() - THROTTLE_WINDOW
    recent = WebFormSubmission.objects.filter(form=form, ip=ip, at__gte=since).order_by("at")
    if recent.count() >= form.per_hour_limit:
        oldest = recent.values_list("at", flat=True).first()
        wait = int((oldest + THROTTLE_WINDOW - clock.now()).total_seconds()) + 1
        raise Throttled(max(1, wait))


def _existing_open_lead(email: str, phone: str) -> Lead | None:
    condition = Q()
    if email:
        condition |= Q(email_key=email.lower())
    if phone:
        condition |= Q(phone=phone)
    if not condition:
        return None
    return Lead.objects.filter(condition, status__in=OPEN_STATUSES).order_by("id").first()


def webform_submit(*, form: WebForm, data: dict, ip: str | None) -> WebFormResult:
    """Turn a web form submission into a lead, or note it on the open lead that sent it before.

    Refusals (missing name or contact, bad email or phone) are ServiceErrors at the field;
    every submission that is not throttled is kept.
    """
    _throttle(form, ip)
    kept = {k: (v if isinstance(v, str) else str(v))[:MESSAGE_MAX] for k, v in data.items()}
    kept = dict(list(kept.items())[:30])
    try:
        values = _submitted(data)
        errors: dict[str, list[str]] = {}
        if not values["name"]:
            errors["name"] = [_("Tell us your name.")]
        if not values["email"] and not values["phone"]:
            errors["email"] = [_("Give an email address or a phone number.")]
        country = values["country"].upper() if values["country"].upper() in countries else ""
        email = _normalized(errors, "email", lambda: normalize_email(values["email"]))
        phone = _normalized(
            errors, "phone", lambda: normalize_phone(values["phone"], country=country)
        )
        if errors:
            raise ServiceError(errors=errors)
    except ServiceError:
        WebFormSubmission.objects.create(form=form, ip=ip, data=kept, at=clock.now())
        raise
    with transaction.atomic():
        # One submission of a form at a time, so a double click cannot make two leads.
        WebForm.objects.select_for_update().filter(pk=form.pk).first()
        existing = _existing_open_lead(email or "", phone or "")
        if existing is not None:
            activity_create(
                by=None,
                kind=Activity.Kind.TASK,
                subject=_("Submitted the web form “%(form)s” again") % {"form": form.name},
                body=values["message"],
                lead=existing,
                owner=existing.owner,
            )
            submission = WebFormSubmission.objects.create(
                form=form, ip=ip, data=kept, lead=existing, duplicate=True, at=clock.now()
            )
            return WebFormResult(submission=submission, lead=existing, duplicate=True)
        client = client_with_email(email or "")
        if client is not None:
            activity_create(
                by=None,
                kind=Activity.Kind.TASK,
                subject=_("Submitted the web form “%(form)s”") % {"form": form.name},
                body=values["message"],
                client=client,
                owner=client.owner,
            )
            submission = WebFormSubmission.objects.create(
                form=form, ip=ip, data=kept, duplicate=True, at=clock.now()
            )
            return WebFormResult(submission=submission, lead=None, duplicate=True)
        lead = lead_create(
            by=None,
            owner=None,
            org_unit=form.org_unit,
            kind=Lead.Kind.COMPANY if values["company"] else Lead.Kind.INDIVIDUAL,
            name=values["name"],
            company=values["company"],
            email=email or "",
            phone=phone or "",
            city=values["city"],
            country=country,
            needs=values["message"],
            source=form.source,
            campaign=form.campaign,
            currency=form.currency,
        )
        submission = WebFormSubmission.objects.create(
            form=form, ip=ip, data=kept, lead=lead, at=clock.now()
        )
    return WebFormResult(submission=submission, lead=lead, duplicate=False)
