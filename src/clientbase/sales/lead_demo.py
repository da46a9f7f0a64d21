"""Demo leads: a handful in every status, with contacts and calls, a distribution rule and a
web form, made through the same services the lead pages use."""

import random

from django.db import transaction

from clientbase.sales.activity_services import activity_create
from clientbase.sales.deal_services import lead_move
from clientbase.sales.lead_services import (
    distribution_rule_save,
    lead_contact_add,
    lead_convert,
    lead_create,
    webform_create,
    webform_submit,
)
from clientbase.sales.models import DistributionRule, Lead
from clientbase.sales.pipelines import default_pipeline, stage_for_state

# (kind, name, company, email, phone, country, city, source, campaign, potential, needs, status)
_LEADS = [
    (
        "company",
        "Jeanne Martin",
        "Boulangerie Martin",
        "jeanne@boulangerie-martin.fr",
        "+33142000101",
        "FR",
        "Paris",
        "trade fair",
        "Salon 2025",
        240000,
        "Bookkeeping and payroll for two shops",
        "in_progress",
    ),
    (
        "company",
        "Paul Girard",
        "Girard Transports",
        "p.girard@girard-transports.fr",
        "+33472000202",
        "FR",
        "Lyon",
        "website",
        "",
        900000,
        "Fleet invoicing, 40 trucks",
        "appointment",
    ),
    (
        "individual",
        "Camille Robert",
        "",
        "camille.robert@example.fr",
        "+33612000303",
        "FR",
        "Nice",
        "referral",
        "",
        45000,
        "Personal tax return",
        "new",
    ),
    (
        "company",
        "Иван Петров",
        "ООО Вектор",
        "ivan@vector-demo.ru",
        "+74951230404",
        "RU",
        "Москва",
        "website",
        "Spring",
        1500000,
        "Переход с 1С, 12 пользователей",
        "in_progress",
    ),
    (
        "company",
        "Nguyễn Thị Lan",
        "Lan Coffee",
        "lan@lancoffee-demo.vn",
        "+842838230505",
        "VN",
        "Hồ Chí Minh",
        "cold call",
        "",
        300000,
        "Invoices in VND and USD",
        "new",
    ),
    (
        "company",
        "Tom Baker",
        "Baker & Sons",
        "tom@bakerandsons-demo.co.uk",
        "+442079460606",
        "GB",
        "London",
        "trade fair",
        "Salon 2025",
        120000,
        "Only wanted a brochure",
        "dead",
    ),
    (
        "company",
        "Sophie Laurent",
        "Atelier Laurent",
        "sophie@atelier-laurent-demo.fr",
        "+33156000707",
        "FR",
        "Paris",
        "website",
        "Spring",
        600000,
        "Monthly retainer, three designers",
        "customer",
    ),
]
_CALLS = ["Discovery call", "Follow-up call", "Call back about pricing"]


def demo_lead_create(*, org, seed: int = 7) -> int:
    """Create the demo leads once (a rerun adds nothing); returns how many were made."""
    if Lead.objects.exists():
        return 0
    rng = random.Random(seed)
    sellers = [org.users["sales.paris"], org.users["sales.paris.b"], org.users["sales.lyon"]]
    pipeline = default_pipeline("lead")
    made = 0
    with transaction.atomic():
        distribution_rule_save(
            by=None,
            name="Website leads",
            source="website",
            members=sellers[:2],
            method=DistributionRule.Method.ROUND_ROBIN,
        )
        distribution_rule_save(
            by=None,
            name="Everything else",
            members=sellers,
            method=DistributionRule.Method.LEAST_LOAD,
            position=10,
        )
        for index, row in enumerate(_LEADS):
            (
                kind,
                name,
                company,
                email,
                phone,
                country,
                city,
                source,
                campaign,
                potential,
                needs,
                status,
            ) = row
            owner = sellers[index % len(sellers)]
            lead = lead_create(
                by=owner,
                kind=kind,
                name=name,
                company=company,
                email=email,
                phone=phone,
                country=country,
                city=city,
                source=source,
                campaign=campaign,
                potential_minor=potential,
                currency="RUB" if country == "RU" else "EUR",
                needs=needs,
                owner=owner,
            )
            made += 1
            if company and index % 2 == 0:
                lead_contact_add(
                    by=owner, lead=lead, name=f"{rng.choice(['Anne', 'Marc'])} Assistant"
                )
            for subject in _CALLS[: rng.randint(0, len(_CALLS))]:
                activity_create(by=owner, kind="call", subject=subject, lead=lead, done=True)
            if status == "customer":
                lead_convert(by=owner, lead=lead)
            elif status != "new":
                lead_move(
                    by=owner,
                    lead=lead,
                    stage=stage_for_state(pipeline, status),
                    reason="No budget this year" if status == "dead" else "",
                )
        issued = webform_create(
            by=None,
            name="Contact page",
            org_unit=org.units["Paris"],
            currency="EUR",
            source="website",
        )
        result = webform_submit(
            form=issued.form,
            data={
                "name": "Hugo Petit",
                "email": "hugo.petit@example.fr",
                "company": "Petit Conseil",
                "message": "Could you send a quote for 5 users?",
            },
            ip="192.0.2.10",
        )
        made += 1 if result.lead is not None else 0
    return made
