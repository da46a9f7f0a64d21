"""Demo message templates: a welcome and a payment reminder in each shipped language, and SMS."""

from __future__ import annotations

import random

from clientbase.core.demo import DemoOrg
from clientbase.marketing.models import MessageTemplate
from clientbase.marketing.services import template_save

# (name, channel, language, subject, body)
DEMO_TEMPLATES = [
    (
        "Welcome",
        "email",
        "en",
        "Welcome to {{ company.name }}, {{ client.name }}",
        "Dear {{ client.name }},\n\nthank you for choosing us. I am your contact for anything "
        "you need: reply to this message or call me on {{ user.phone | default('our office') }}."
        "\n\nKind regards,\n{{ user.name }}",
    ),
    (
        "Welcome",
        "email",
        "fr",
        "Bienvenue chez {{ company.name }}, {{ client.name }}",
        "Bonjour {{ client.civility }} {{ client.last_name | default(client.name) }},\n\n"
        "merci de votre confiance. Je suis votre interlocuteur : répondez simplement à ce "
        "message.\n\nBien cordialement,\n{{ user.name }}",
    ),
    (
        "Welcome",
        "email",
        "ru",
        "Добро пожаловать в {{ company.name }}",
        "Здравствуйте, {{ client.name }}!\n\nСпасибо, что выбрали нас. Я ваш персональный "
        "менеджер: просто ответьте на это письмо.\n\nС уважением,\n{{ user.name }}",
    ),
    (
        "Welcome",
        "email",
        "vi",
        "Chào mừng {{ client.name }} đến với {{ company.name }}",
        "Kính gửi {{ client.name }},\n\ncảm ơn quý khách đã tin tưởng chúng tôi. Tôi là người "
        "phụ trách của quý khách: chỉ cần trả lời thư này.\n\nTrân trọng,\n{{ user.name }}",
    ),
    (
        "Payment reminder",
        "email",
        "en",
        "Invoice {{ invoice.number }}: {{ invoice.balance_due }} still due",
        "Dear {{ client.name }},\n\nour invoice {{ invoice.number }} of {{ invoice.issued_on }} "
        "was due on {{ invoice.due_on }}; {{ invoice.balance_due }} of {{ invoice.total }} is "
        "still open. If you have paid already, please ignore this message.\n\n{{ user.name }}",
    ),
    (
        "Relance de paiement",
        "email",
        "fr",
        "Facture {{ invoice.number }} : {{ invoice.balance_due }} restant dû",
        "Bonjour,\n\nnotre facture {{ invoice.number }} du {{ invoice.issued_on }} était "
        "payable le {{ invoice.due_on }} ; il reste {{ invoice.balance_due }} à régler. Si "
        "le paiement est parti, merci de ne pas tenir compte de ce message.\n\n{{ user.name }}",
    ),
    (
        "Quote follow-up",
        "email",
        "en",
        "Your quote {{ deal.name }}",
        "Hello {{ lead.name | default(client.name | default('there')) }},\n\nI wanted to check "
        "whether our proposal for {{ deal.name }} ({{ deal.value }}) suits you, and answer any "
        "questions before {{ deal.expected_close | default('the end of the month') }}.\n\n"
        "{{ user.name }}\n{{ user.phone }}",
    ),
    (
        "Appointment reminder",
        "sms",
        "",
        "",
        "{{ company.name }}: reminder of our meeting tomorrow. Call {{ user.phone | "
        "default(user.name) }} to change it.",
    ),
    (
        "Rappel de rendez-vous",
        "sms",
        "fr",
        "",
        "{{ company.name }} : rappel de notre rendez-vous demain. {{ user.name }}",
    ),
]


def demo_templates_create(*, org: DemoOrg, seed: int = 7) -> int:
    """Write the demo templates that are missing; returns how many were made."""
    rng = random.Random(seed)
    authors = [u for name, u in sorted(org.users.items()) if name in ("director", "admin")]
    made = 0
    for name, channel, language, subject, body in DEMO_TEMPLATES:
        if MessageTemplate.objects.filter(name=name, channel=channel, language=language).exists():
            continue
        template_save(
            by=rng.choice(authors) if authors else None,
            name=name,
            channel=channel,
            language=language,
            subject=subject,
            body=body,
        )
        made += 1
    return made
