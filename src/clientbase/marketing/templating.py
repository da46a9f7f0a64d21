"""Merge tags: a sandboxed template language over plain dicts of the fields we offer (MKT-1).

A template sees only `merge_context()`'s dicts of strings and numbers, never a model, a
queryset or a callable, and `check()` walks the parsed template against the tag registry
so an unknown tag is named even inside a branch that would not be taken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money

__all__ = [
    "ALLOWED_FILTERS",
    "TAG_GROUPS",
    "Tag",
    "TagGroup",
    "check",
    "merge_context",
    "render",
    "tag_names",
]


@dataclass(frozen=True)
class Tag:
    """One merge tag offered to template writers: `{{ group.name }}`."""

    name: str
    label: str
    example: str
    # For a list tag (quote lines), the fields of each item.
    items: tuple[Tag, ...] = ()


@dataclass(frozen=True)
class TagGroup:
    """The tags of one kind of record (client, deal, …); `scalar` groups are a tag themselves."""

    name: str
    label: str
    tags: tuple[Tag, ...] = ()
    scalar_example: str = ""

    @property
    def scalar(self) -> bool:
        return not self.tags

    def tag(self, name: str) -> Tag | None:
        return next((t for t in self.tags if t.name == name), None)


_L = gettext_lazy
_PERSON = (
    Tag("civility", _L("civility"), "Mme"),
    Tag("first_name", _L("first name"), "Claire"),
    Tag("last_name", _L("last name"), "Martin"),
    Tag("name", _L("name"), "Claire Martin"),
)
_ADDRESS = (
    Tag("street", _L("street"), "12 rue de la Paix"),
    Tag("postcode", _L("postcode"), "75002"),
    Tag("city", _L("city"), "Paris"),
    Tag("country", _L("country"), "France"),
    Tag("address", _L("address on one line"), "12 rue de la Paix, 75002 Paris, France"),
)
_LINE = (
    Tag("description", _L("description"), "Web hosting, 12 months"),
    Tag("quantity", _L("quantity"), "2"),
    Tag("unit_price", _L("unit price"), "120,00 €"),
    Tag("discount_percent", _L("discount, %"), "10"),
    Tag("tax_rate", _L("tax, %"), "20"),
    Tag("amount", _L("amount before tax"), "216,00 €"),
    Tag("tax", _L("tax"), "43,20 €"),
)

TAG_GROUPS: tuple[TagGroup, ...] = (
    TagGroup(
        "client",
        _L("Client"),
        (
            Tag("number", _L("client number"), "C-00042"),
            *_PERSON,
            Tag("company", _L("company"), "Atelier Martin SARL"),
            Tag("email", _L("email"), "claire@atelier-martin.fr"),
            Tag("phone", _L("phone"), "+33 1 42 68 53 00"),
            *_ADDRESS,
        ),
    ),
    TagGroup(
        "contact",
        _L("Contact person"),
        (
            *_PERSON[1:],
            Tag("position", _L("position"), "Office manager"),
            Tag("email", _L("email"), "paul@atelier-martin.fr"),
            Tag("phone", _L("phone"), "+33 6 12 34 56 78"),
        ),
    ),
    TagGroup(
        "lead",
        _L("Lead"),
        (
            Tag("number", _L("lead number"), "L-00017"),
            Tag("civility", _L("civility"), "M."),
            Tag("name", _L("name"), "Jean Dupont"),
            Tag("company", _L("company"), "Dupont & Fils"),
            Tag("position", _L("position"), "Director"),
            Tag("email", _L("email"), "jean@dupont.fr"),
            Tag("phone", _L("phone"), "+33 4 78 00 00 00"),
            *_ADDRESS,
            Tag("source", _L("source"), "web form"),
            Tag("needs", _L("needs"), "A new website"),
            Tag("potential", _L("potential"), "5 000,00 €"),
        ),
    ),
    TagGroup(
        "deal",
        _L("Deal"),
        (
            Tag("number", _L("deal number"), "D-00008"),
            Tag("name", _L("name"), "Website redesign"),
            Tag("value", _L("value"), "12 000,00 €"),
            Tag("stage", _L("stage"), "Negotiation"),
            Tag("probability", _L("probability, %"), "60"),
            Tag("expected_close", _L("expected close"), "30 juin 2025"),
        ),
    ),
    TagGroup(
        "invoice",
        _L("Invoice"),
        (
            Tag("number", _L("invoice number"), "INV-2025-0012"),
            Tag("issued_on", _L("invoice date"), "1 juin 2025"),
            Tag("due_on", _L("due date"), "15 juin 2025"),
            Tag("total", _L("total"), "1 440,00 €"),
            Tag("balance_due", _L("balance due"), "440,00 €"),
        ),
    ),
    TagGroup(
        "quote",
        _L("Quote"),
        (
            Tag("number", _L("quote number"), "Q-2025-0003"),
            Tag("title", _L("title"), "Website redesign"),
            Tag("issued_on", _L("date"), "1 juin 2025"),
            Tag("valid_until", _L("valid until"), "1 juillet 2025"),
            Tag("subtotal", _L("subtotal"), "1 200,00 €"),
            Tag("tax", _L("tax"), "240,00 €"),
            Tag("total", _L("total"), "1 440,00 €"),
            Tag("lines", _L("lines (use in a for loop)"), "", _LINE),
        ),
    ),
    TagGroup(
        "contract",
        _L("Contract"),
        (
            Tag("number", _L("contract number"), "K-2025-0002"),
            Tag("title", _L("title"), "Hosting and support"),
            Tag("starts_on", _L("starts"), "1 juillet 2025"),
            Tag("ends_on", _L("ends"), "30 juin 2026"),
            Tag("value", _L("value"), "14 400,00 €"),
            Tag("terms", _L("terms"), "Payable monthly in advance."),
            Tag("lines", _L("lines (use in a for loop)"), "", _LINE),
        ),
    ),
    TagGroup(
        "user",
        _L("You (the sender)"),
        (
            *_PERSON[1:],
            Tag("email", _L("email"), "anna@example.com"),
            Tag("phone", _L("phone"), "+33 1 00 00 00 00"),
        ),
    ),
    TagGroup(
        "company",
        _L("Our company"),
        (Tag("name", _L("name"), "Clientbase"),),
    ),
    TagGroup("today", _L("Today's date"), scalar_example="1 juin 2025"),
)

_GROUPS = {group.name: group for group in TAG_GROUPS}
_LOOP_FIELDS = frozenset({"index", "index0", "revindex", "first", "last", "length"})

ALLOWED_FILTERS: tuple[str, ...] = (
    "capitalize",
    "center",
    "default",
    "first",
    "indent",
    "join",
    "last",
    "length",
    "lower",
    "replace",
    "round",
    "title",
    "trim",
    "truncate",
    "upper",
    "wordwrap",
)
_ALLOWED_TESTS = frozenset(
    {"defined", "undefined", "none", "number", "string", "eq", "ne", "gt", "ge", "lt", "le", "in"}
)
# Statements that reach other templates or define callables: nothing a message needs.
_FORBIDDEN_NODES = (
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Block,
)


def tag_names() -> list[str]:
    """Every tag a template may use, dotted: client.name, quote.lines, today."""
    names = []
    for group in TAG_GROUPS:
        if group.scalar:
            names.append(group.name)
        names.extend(f"{group.name}.{tag.name}" for tag in group.tags)
    return names


@cache
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True
    )
    # No globals (range, lipsum, namespace…) and only the filters and tests we list.
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in ALLOWED_FILTERS}
    env.tests = {name: env.tests[name] for name in _ALLOWED_TESTS}
    return env


def _syntax_error(error: TemplateSyntaxError) -> ServiceError:
    return ServiceError(
        _("Syntax error on line %(line)s: %(message)s")
        % {"line": error.lineno, "message": error.message},
        field="body",
    )


def _unknown(path: str) -> ServiceError:
    return ServiceError(_("Unknown tag: %(tag)s") % {"tag": path}, field="body")


def _dotted(node: nodes.Node) -> str:
    """A readable name for an expression, for error messages: client.fist_name."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_dotted(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_dotted(node.node)}.{node.arg.value}"
    if isinstance(node, nodes.Const):
        return repr(node.value)
    return type(node).__name__.lower()


class _Checker:
    """Walks a parsed template and refuses anything beyond the offered tags and filters."""

    def __init__(self) -> None:
        # Names bound by {% for %} and {% set %}: to the item fields of a list tag, to the
        # loop helper, or to None for a plain value.
        self.scopes: list[dict[str, tuple[Tag, ...] | frozenset | None]] = [{}]

    def local(self, name: str):
        for scope in reversed(self.scopes):
            if name in scope:
                return True, scope[name]
        return False, None

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, _FORBIDDEN_NODES):
            raise ServiceError(
                _("This statement is not allowed in a message template (line %(line)s).")
                % {"line": node.lineno},
                field="body",
            )
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        if handler:
            handler(node)
        else:
            self.children(node)

    def children(self, node: nodes.Node) -> None:
        for child in node.iter_child_nodes():
            self.visit(child)

    def visit_Name(self, node: nodes.Name) -> None:
        if node.ctx == "store":
            self.scopes[-1][node.name] = None
            return
        found, _fields = self.local(node.name)
        if not found and node.name not in _GROUPS:
            raise _unknown(node.name)

    def _attribute(self, node: nodes.Getattr | nodes.Getitem, attr) -> None:
        path = _dotted(node)
        base = node.node
        if not isinstance(attr, str) or not isinstance(base, nodes.Name):
            raise _unknown(path)
        found, fields = self.local(base.name)
        if found:
            if isinstance(fields, frozenset) and attr in fields:
                return
            if isinstance(fields, tuple) and any(tag.name == attr for tag in fields):
                return
            raise _unknown(path)
        group = _GROUPS.get(base.name)
        if group is None or group.tag(attr) is None:
            raise _unknown(path)

    def visit_Getattr(self, node: nodes.Getattr) -> None:
        self._attribute(node, node.attr)

    def visit_Getitem(self, node: nodes.Getitem) -> None:
        attr = node.arg.value if isinstance(node.arg, nodes.Const) else None
        self._attribute(node, attr)

    def visit_Mul(self, node: nodes.Mul) -> None:
        # 'x' * 10**9 or 9 ** 9 ** 9 would tie up the server; a message needs no arithmetic.
        raise ServiceError(
            _("Multiplying and raising to a power are not allowed in a message template."),
            field="body",
        )

    visit_Pow = visit_Mul

    def visit_Call(self, node: nodes.Call) -> None:
        raise ServiceError(
            _("Calling %(name)s is not allowed in a message template.")
            % {"name": _dotted(node.node)},
            field="body",
        )

    def visit_Filter(self, node: nodes.Filter) -> None:
        if node.name not in ALLOWED_FILTERS:
            raise ServiceError(
                _("Unknown filter: %(name)s. Filters you can use: %(allowed)s.")
                % {"name": node.name, "allowed": ", ".join(ALLOWED_FILTERS)},
                field="body",
            )
        self.children(node)

    def visit_Test(self, node: nodes.Test) -> None:
        if node.name not in _ALLOWED_TESTS:
            raise ServiceError(
                _("Unknown test: %(name)s.") % {"name": node.name},
                field="body",
            )
        self.children(node)

    def visit_For(self, node: nodes.For) -> None:
        self.visit(node.iter)
        items: tuple[Tag, ...] | None = None
        if isinstance(node.iter, nodes.Getattr) and isinstance(node.iter.node, nodes.Name):
            group = _GROUPS.get(node.iter.node.name)
            tag = group.tag(node.iter.attr) if group else None
            items = tag.items if tag and tag.items else None
        self.scopes.append({"loop": _LOOP_FIELDS})
        if isinstance(node.target, nodes.Name):
            self.scopes[-1][node.target.name] = items
        else:
            self.visit(node.target)
        if node.test is not None:
            self.visit(node.test)
        for child in node.body:
            self.visit(child)
        self.scopes.pop()
        for child in node.else_:
            self.visit(child)

    def visit_Assign(self, node: nodes.Assign) -> None:
        self.visit(node.node)
        self.visit(node.target)


def _too_deep() -> ServiceError:
    return ServiceError(_("The template is nested too deeply."), field="body")


def _parse(source: str) -> nodes.Template:
    try:
        return _environment(False).parse(source)
    except TemplateSyntaxError as error:
        raise _syntax_error(error) from None
    except RecursionError:
        raise _too_deep() from None


def check(source: str) -> None:
    """Refuse a template with a syntax error or a tag, filter or statement we do not offer."""
    tree = _parse(source)
    try:
        _Checker().visit(tree)
    except RecursionError:
        raise _too_deep() from None


def render(source: str, context: dict, *, html: bool = False) -> str:
    """Render a checked template over a merge context; ServiceError(field="body") if it fails."""
    check(source)
    try:
        return _environment(html).from_string(source).render(context)
    except UndefinedError as error:
        raise ServiceError(
            _("A tag has no value for this record: %(error)s") % {"error": error.message},
            field="body",
        ) from None
    except RecursionError:
        raise _too_deep() from None
    except (SecurityError, TemplateError, TypeError, ValueError) as error:
        raise ServiceError(
            _("The template could not be filled in: %(error)s") % {"error": error},
            field="body",
        ) from None


# --- the merge context -----------------------------------------------------------------


def _date(value: dt.date | dt.datetime | None, locale: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(clock.company_timezone()).date()
    return format_date(value, format="long", locale=locale)


def _money(minor: int, currency: str, locale: str) -> str:
    return Money(minor, currency).format(locale)


def _number(value: Decimal, locale: str) -> str:
    return format_decimal(value, locale=locale)


def _country(code: str, locale: str) -> str:
    if not code:
        return ""
    return Locale.parse(locale).territories.get(code.upper(), code)


def _one_line(*parts: str) -> str:
    return ", ".join(part for part in parts if part)


def _address(street: str, postcode: str, city: str, country: str) -> dict:
    return {
        "street": street,
        "postcode": postcode,
        "city": city,
        "country": country,
        "address": _one_line(street, " ".join(p for p in (postcode, city) if p), country),
    }


def _client(client, locale: str) -> dict:
    custom = client.custom if isinstance(client.custom, dict) else {}
    return {
        "number": client.number,
        "civility": str(custom.get("civility", "")),
        "first_name": client.first_name,
        "last_name": client.last_name,
        "name": client.name,
        "company": client.company_name or (client.name if client.kind == "company" else ""),
        "email": client.email,
        "phone": client.phone,
        **_address(client.street, client.postcode, client.city, _country(client.country, locale)),
    }


def _contact(contact) -> dict:
    phone = contact.phones.order_by("id").values_list("number", flat=True).first() or ""
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": " ".join(p for p in (contact.first_name, contact.last_name) if p),
        "position": contact.position,
        "email": contact.email,
        "phone": phone,
    }


def _lead(lead, locale: str) -> dict:
    return {
        "number": lead.number,
        "civility": lead.civility,
        "name": lead.name,
        "company": lead.company,
        "position": lead.position_title,
        "email": lead.email,
        "phone": lead.phone,
        **_address(lead.street, lead.postcode, lead.city, _country(lead.country, locale)),
        "source": lead.source,
        "needs": lead.needs,
        "potential": _money(lead.potential_minor, lead.currency, locale),
    }


def _deal(deal, locale: str) -> dict:
    return {
        "number": deal.number,
        "name": deal.name,
        "value": _money(deal.value_minor, deal.currency, locale),
        "stage": deal.stage.name if deal.stage_id else "",
        "probability": deal.probability,
        "expected_close": _date(deal.expected_close, locale),
    }


def _invoice(invoice, locale: str) -> dict:
    return {
        "number": invoice.number,
        "issued_on": _date(invoice.issued_on, locale),
        "due_on": _date(invoice.due_on, locale),
        "total": _money(invoice.total_minor, invoice.currency, locale),
        "balance_due": _money(invoice.balance_minor, invoice.currency, locale),
    }


def _lines(lines, currency: str, locale: str) -> list[dict]:
    return [
        {
            "description": line.description,
            "quantity": _number(line.quantity, locale),
            "unit_price": format_decimal(line.unit_price, locale=locale, decimal_quantization=False)
            + f" {currency}",
            "discount_percent": _number(line.discount_percent, locale),
            "tax_rate": _number(line.tax_rate, locale),
            "amount": _money(line.net_minor, currency, locale),
            "tax": _money(line.tax_minor, currency, locale),
        }
        for line in lines.order_by("position", "id")
    ]


def _quote(quote, locale: str) -> dict:
    return {
        "number": quote.number,
        "title": quote.title,
        "issued_on": _date(quote.issued_on, locale),
        "valid_until": _date(quote.valid_until, locale),
        "subtotal": _money(quote.subtotal_minor, quote.currency, locale),
        "tax": _money(quote.tax_minor, quote.currency, locale),
        "total": _money(quote.total_minor, quote.currency, locale),
        "lines": _lines(quote.lines, quote.currency, locale),
    }


def _contract(contract, locale: str) -> dict:
    return {
        "number": contract.number,
        "title": contract.title,
        "starts_on": _date(contract.starts_on, locale),
        "ends_on": _date(contract.ends_on, locale),
        "value": _money(contract.value_minor, contract.currency, locale),
        "terms": contract.terms,
        "lines": _lines(contract.lines, contract.currency, locale),
    }


def _user(user) -> dict:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": user.get_full_name() or user.get_username(),
        "email": user.email,
        "phone": getattr(user, "phone", ""),
    }


def merge_language(*records) -> str:
    """The recipient's language: the first record given that has one, else English."""
    for record in records:
        language = getattr(record, "language", "") if record is not None else ""
        if language:
            return language
    return "en"


def merge_context(
    *,
    client=None,
    contact=None,
    lead=None,
    deal=None,
    invoice=None,
    user=None,
    quote=None,
    contract=None,
    language: str | None = None,
) -> dict:
    """Plain dicts of the offered fields, formatted in the recipient's language.

    The caller has already checked the records are in the acting user's sight. A group with
    no record is an empty dict, so `{% if deal %}` works and `{{ deal.name }}` says it has
    no value. The client (and language) come from the contact, invoice, deal, quote or
    contract when not given.
    """
    for record in (contact, invoice, deal, quote, contract):
        if client is None and record is not None and getattr(record, "client_id", None):
            client = record.client
    locale = language or merge_language(client, lead)
    if locale not in dict(settings.LANGUAGES):
        # Babel would refuse an unknown locale; the text still goes out, in English formats.
        locale = "en"
    return {
        "client": _client(client, locale) if client else {},
        "contact": _contact(contact) if contact else {},
        "lead": _lead(lead, locale) if lead else {},
        "deal": _deal(deal, locale) if deal else {},
        "invoice": _invoice(invoice, locale) if invoice else {},
        "quote": _quote(quote, locale) if quote else {},
        "contract": _contract(contract, locale) if contract else {},
        "user": _user(user) if user else {},
        "company": {"name": getattr(settings, "COMPANY_NAME", "Clientbase")},
        "today": _date(clock.today(), locale),
    }


def example_context() -> dict:
    """The registry's examples as a merge context, to preview a template with no record."""
    context: dict = {}
    for group in TAG_GROUPS:
        if group.scalar:
            context[group.name] = group.scalar_example
            continue
        context[group.name] = {
            tag.name: [{item.name: item.example for item in tag.items}]
            if tag.items
            else tag.example
            for tag in group.tags
        }
    return context


def iter_groups() -> Iterator[TagGroup]:
    """The tag groups in the order the help panel shows them."""
    return iter(TAG_GROUPS)
