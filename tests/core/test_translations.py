"""The shipped translations: complete, compiled, in step with the code, and used by pages."""

import gettext
import io
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from clientbase.core.management.commands import messages

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
LOCALES = ["ru", "fr", "vi"]
PLURAL_FORMS = {"ru": 3, "fr": 2, "vi": 1}
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[#0 +-]*\d*(?:\.\d+)?[sdifeEgGxXorc%]")
TAG = re.compile(r"</?[a-z][a-z0-9]*\b[^>]*>")


def catalog(locale: str, locale_dir: Path = LOCALE_DIR):
    """The babel catalog of one shipped language."""
    with (locale_dir / locale / "LC_MESSAGES" / "django.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def entries(locale: str):
    """Every message of a language but the header."""
    return [message for message in catalog(locale) if message.id]


def forms(message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The message's source strings and its translations, as tuples."""
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return ids, strings


def placeholders(text: str) -> list[str]:
    """The python-format placeholders of a string, sorted, `%%` left out."""
    return sorted(p for p in PLACEHOLDER.findall(text) if p != "%%")


def po_header(locale: str) -> dict[str, str]:
    """The header fields of a shipped .po file, as written in it."""
    text = (LOCALE_DIR / locale / "LC_MESSAGES" / "django.po").read_text()
    block = text[text.index('msgid ""\nmsgstr ""\n') : text.index("\n\n")]
    joined = "".join(re.findall(r'^"(.*)"$', block, re.MULTILINE)).replace("\\n", "\n")
    return dict(line.split(": ", 1) for line in joined.splitlines() if line)


@pytest.mark.parametrize(
    ("locale", "plural_forms"),
    [
        (
            "ru",
            "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
            "(n%100<10 || n%100>=20) ? 1 : 2);",
        ),
        ("fr", "nplurals=2; plural=(n > 1);"),
        ("vi", "nplurals=1; plural=0;"),
    ],
)
def test_header_names_the_project_language_charset_and_plural_rule(locale, plural_forms):
    # given the shipped .po file and its compiled .mo
    header = po_header(locale)
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle).info()
    # then both say what gettext and translators need
    assert header["Project-Id-Version"] == "Clientbase"
    assert header["Language"] == locale
    assert header["Content-Type"] == "text/plain; charset=UTF-8"
    assert header["Plural-Forms"] == plural_forms
    assert compiled["plural-forms"] == plural_forms
    assert compiled["language"] == locale
    assert catalog(locale).fuzzy is False


@pytest.mark.parametrize("locale", LOCALES)
def test_every_string_is_translated_and_none_is_fuzzy(locale):
    # given every entry of the language
    found = entries(locale)
    # then each has a translation in every plural form, none marked fuzzy
    untranslated = [forms(m)[0][0] for m in found if not all(forms(m)[1])]
    fuzzy = [forms(m)[0][0] for m in found if m.fuzzy]
    wrong_forms = [
        forms(m)[0][0] for m in found if m.pluralizable and len(forms(m)[1]) != PLURAL_FORMS[locale]
    ]
    assert untranslated == []
    assert fuzzy == []
    assert wrong_forms == []
    assert len(found) > 300


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_placeholders_and_markup(locale):
    # given every entry of the language
    mismatched = []
    for message in entries(locale):
        ids, strings = forms(message)
        # then each translation has exactly the placeholders and HTML tags of its source
        expected_placeholders = placeholders(ids[-1])
        expected_tags = sorted(TAG.findall(ids[-1]))
        for string in strings:
            if placeholders(string) != expected_placeholders:
                mismatched.append((ids[0], string))
            if sorted(TAG.findall(string)) != expected_tags:
                mismatched.append((ids[0], string))
    assert mismatched == []


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_mo_matches_its_po(locale):
    # given the .po compiled in memory and the checked-in .mo
    buffer = io.BytesIO()
    write_mo(buffer, catalog(locale))
    fresh = gettext.GNUTranslations(io.BytesIO(buffer.getvalue()))
    mo_path = LOCALE_DIR / locale / "LC_MESSAGES" / "django.mo"
    with mo_path.open("rb") as handle:
        shipped = gettext.GNUTranslations(handle)
    # then both hold the same messages, one per entry plus the header
    assert shipped._catalog == fresh._catalog
    singular = sum(1 for m in entries(locale) if not m.pluralizable)
    plural_keys = sum(PLURAL_FORMS[locale] for m in entries(locale) if m.pluralizable)
    assert len(shipped._catalog) == 1 + singular + plural_keys


def test_compiled_russian_catalog_translates_and_pluralises():
    # given the checked-in Russian .mo
    with (LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.mo").open("rb") as handle:
        russian = gettext.GNUTranslations(handle)
    # then it translates and picks the Russian plural form by number
    assert russian.gettext("Dashboard") == "Главная"
    one, few, many = (
        russian.ngettext("%(people)s person", "%(people)s people", n) % {"people": n}
        for n in (21, 3, 11)
    )
    assert (one, few, many) == ("21 человек", "3 человека", "11 человек")
    values = [russian.ngettext("%(n)s value", "%(n)s values", n) % {"n": n} for n in (1, 2, 5)]
    assert values == ["1 значение", "2 значения", "5 значений"]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="xgettext not installed (gettext)")
def test_every_string_in_the_code_is_in_the_po_files():
    # when makemessages runs over a scratch copy of the code
    missing = messages.missing_msgids()
    # then it finds no string the shipped .po files lack
    assert missing == {"ru": set(), "fr": set(), "vi": set()}


def test_django_uses_the_shipped_translations():
    # when the interface speaks Russian, French or Vietnamese
    with translation.override("ru"):
        russian = translation.gettext("Dashboard")
    with translation.override("fr"):
        french = translation.gettext("Latest activity")
    with translation.override("vi"):
        vietnamese = translation.gettext("Sign in")
    # then the strings come from our catalogs
    assert (russian, french, vietnamese) == ("Главная", "Activité récente", "Đăng nhập")


@pytest.mark.parametrize(
    ("language", "heading"), [("fr", "Activité récente"), ("vi", "Hoạt động gần đây")]
)
def test_dashboard_speaks_the_language_of_the_cookie(signed_in, make_user, language, heading):
    # given a signed-in user whose browser asks for a language by cookie
    client = signed_in(make_user("anna"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    # when she opens the dashboard
    response = client.get("/")
    # then the page is in that language
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{language}">' in page
    assert heading in page
    assert "Latest activity" not in page


@pytest.fixture
def scratch_locale(tmp_path, monkeypatch):
    """A copy of the shipped locale directory that the command works on instead."""
    copy = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, copy)
    monkeypatch.setattr(messages, "LOCALE_DIR", copy)
    # the code-versus-.po comparison has its own test; here only the files are checked
    monkeypatch.setattr(messages, "missing_msgids", lambda: {locale: set() for locale in LOCALES})
    return copy


def rewrite_po(locale_dir: Path, locale: str, old: str, new: str) -> None:
    """Change one line of a scratch .po file."""
    path = locale_dir / locale / "LC_MESSAGES" / "django.po"
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def test_check_passes_on_the_shipped_files(scratch_locale, capsys):
    # when the check runs on untouched files
    call_command("messages", "--check")
    # then it reports nothing wrong
    assert capsys.readouterr().out == "translations complete\n"


def test_check_fails_on_an_untranslated_string(scratch_locale, capsys):
    # given a French string whose translation was left empty
    rewrite_po(scratch_locale, "fr", 'msgstr "Tableau de bord"', 'msgstr ""')
    po_before = (scratch_locale / "fr" / "LC_MESSAGES" / "django.po").read_bytes()
    # when the check runs
    with pytest.raises(CommandError, match=r"^2 translation problem\(s\)$"):
        call_command("messages", "--check")
    # then it names the string, and the stale .mo, and changes no file
    errors = capsys.readouterr().err.splitlines()
    po = scratch_locale / "fr" / "LC_MESSAGES" / "django.po"
    assert errors == [
        f"{po}: untranslated: 'Dashboard'",
        f"{po.with_suffix('.mo')}: out of date with django.po; run `clientbase messages`",
    ]
    assert po.read_bytes() == po_before


def test_check_fails_on_a_fuzzy_string(scratch_locale, capsys):
    # given a Vietnamese string marked fuzzy by a merge
    rewrite_po(scratch_locale, "vi", '\nmsgid "Sign out"\n', '\n#, fuzzy\nmsgid "Sign out"\n')
    # when the check runs
    with pytest.raises(CommandError, match=r"^2 translation problem\(s\)$"):
        call_command("messages", "--check")
    # then it names the fuzzy string (which the compiled .mo must leave out)
    errors = capsys.readouterr().err.splitlines()
    po = scratch_locale / "vi" / "LC_MESSAGES" / "django.po"
    assert errors[0] == f"{po}: fuzzy: 'Sign out'"
    assert errors[1].endswith("out of date with django.po; run `clientbase messages`")


def test_compiling_brings_a_stale_mo_up_to_date(scratch_locale, capsys):
    # given a Russian translation changed in the .po only
    rewrite_po(scratch_locale, "ru", 'msgstr "Выйти"', 'msgstr "Выход"')
    with pytest.raises(CommandError, match=r"^1 translation problem\(s\)$"):
        call_command("messages", "--check")
    # when the catalogs are compiled (no xgettext needed)
    call_command("messages", "--compile-only")
    # then the .mo carries the change and the check passes
    mo = scratch_locale / "ru" / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as handle:
        assert gettext.GNUTranslations(handle).gettext("Sign out") == "Выход"
    capsys.readouterr()
    call_command("messages", "--check")
    assert capsys.readouterr().out == "translations complete\n"
