"""Demo support desk: departments, reply templates, articles and tickets in every state, made
through the same services (and the same mail intake) the desk uses."""

import random
from email.message import EmailMessage
from email.utils import formataddr

from django.db import transaction

from clientbase.clients.models import Client
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import Department, Ticket

DEMO_TICKETS = 24

# (subject, body, language) of mail customers write.
_MAILS = [
    ("Не работает почта", "Здравствуйте! С утра не отправляются письма с ящика info@.", "ru"),
    ("Смена контактного телефона", "Прошу заменить телефон на +7 495 123-45-67.", "ru"),
    ("Счёт 72815 не найден", "Оплатили счёт, но в кабинете он не отмечен.", "ru"),
    ("Site inaccessible", "Bonjour, notre site ne répond plus depuis ce matin.", "fr"),
    ("Facture en double", "Nous avons reçu deux fois la même facture.", "fr"),
    ("Không đăng nhập được", "Xin chào, tôi không đăng nhập được vào bảng điều khiển.", "vi"),
    ("SSL certificate expired", "Browsers warn that our certificate has expired.", "en"),
    ("Need more disk space", "We need 15 GB more on the VPS, please.", "en"),
]

_ARTICLES = [
    (
        "Mail",
        "Mail is not being sent",
        "smtp mail sending почта",
        "Check the mailbox quota first, then the SMTP password in the mail program. "
        "If both are right, open a ticket with the error message the program shows.",
    ),
    (
        "Mail",
        "Почта не отправляется",
        "почта smtp отправка",
        "Проверьте квоту ящика и пароль SMTP в почтовой программе. Если всё верно, "
        "пришлите текст ошибки в тикете.",
    ),
    (
        "Billing",
        "Where is my payment?",
        "payment invoice paid счёт оплата",
        "Bank transfers are matched to invoices by the invoice number in the purpose of "
        "payment. Without it, matching takes up to two working days.",
    ),
    (
        "Hosting",
        "Adding disk space to a VPS",
        "disk space vps gb",
        "Disk space is added in packages of 5 GB. Order the packages you need; technical "
        "support extends the disk once the invoice is paid.",
    ),
]


def _mail(sender: str, name: str, subject: str, body: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = formataddr((name, sender))
    message["To"] = "support@demo.clientbase.local"
    message["Subject"] = subject
    message["Message-ID"] = f"<demo-{number}@demo.clientbase.local>"
    message.set_content(body)
    return message.as_bytes()


def demo_support_create(*, org, seed: int = 11) -> int:
    """Create the desk once (a rerun adds nothing); returns how many tickets were made."""
    if Department.objects.exists():
        return 0
    rng = random.Random(seed)
    agent = org.users["support"]
    company = org.units["Clientbase Demo"]
    with transaction.atomic():
        technical = services.department_save(
            by=None,
            name="Technical support",
            email="support@demo.clientbase.local",
            org_unit=company,
            is_default=True,
            escalation=Department.Escalation.REASSIGN,
            escalate_to=org.users["director"],
        )
        services.department_save(
            by=None,
            name="Billing questions",
            email="billing-help@demo.clientbase.local",
            org_unit=company,
            sla_urgent=30,
            sla_high=60,
        )
        services.reply_template_save(
            by=agent,
            name="Received, working on it",
            body="Hello $client_name,\n\nthank you for ticket #$ticket_number. "
            "We are working on it and will write again today.\n\n$agent_name, $company",
        )
        services.reply_template_save(
            by=agent,
            name="Solved",
            body="Hello $client_name,\n\nthe problem is solved. If anything is still "
            "wrong, just reply to this mail.\n\n$agent_name",
        )
        categories = {
            name: services.kb_category_save(by=agent, name=name, position=position)
            for position, name in enumerate(["Mail", "Billing", "Hosting"])
        }
        for category, title, keywords, body in _ARTICLES:
            services.article_save(
                by=agent,
                category=categories[category],
                title=title,
                body=body,
                keywords=keywords,
            )
    clients = list(Client.objects.filter(status="active").order_by("pk")[:DEMO_TICKETS])
    made = 0
    for number, client in enumerate(clients, start=1):
        subject, body, _language = _MAILS[number % len(_MAILS)]
        result = mail_ingest(
            _mail(client.email, client.name, subject, body, number),
            via="pipe",
            department=technical if number % 3 else None,
        )
        ticket = result.ticket
        if ticket is None:
            continue
        made += 1
        fate = rng.random()
        if fate < 0.35:
            continue  # stays awaiting a reply, some of them overdue later
        services.ticket_reply(
            by=agent, ticket=ticket, body="Hello,\n\nwe are looking into it.\n\nSam"
        )
        if fate < 0.55:
            services.ticket_note(by=agent, ticket=ticket, body="Asked the hosting team to check.")
        elif fate < 0.85:
            services.ticket_close(by=agent, ticket=Ticket.objects.get(pk=ticket.pk))
            if fate < 0.75:
                services.ticket_rate(ticket=ticket, score=rng.choice([3, 4, 5, 5]))
        else:
            services.ticket_update(by=agent, ticket=ticket, is_complaint=True, priority="high")
    return made
