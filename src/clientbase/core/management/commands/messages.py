"""`clientbase messages`: extract the interface strings into the .po files and compile them."""

import contextlib
import gettext
import io
import os
import re
import shutil
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

LOCALES = ["ru", "fr", "vi"]
DOMAIN = "django"
IGNORE = ["static/vendor", "static/vendor/*", "*/migrations/*"]
PACKAGE_DIR = Path(__file__).resolve().parents[3]
LOCALE_DIR = PACKAGE_DIR / "locale"
# makemessages restamps this header on every run; keeping the old stamp when nothing else
# changed stops a no-op run from touching every checked-in .po and .mo.
_STAMP = re.compile(r'^"POT-Creation-Date: .*\\n"\n', re.MULTILINE)


def po_path(locale: str, locale_dir: Path | None = None) -> Path:
    """The .po file of one language, in the shipped locale directory unless told another."""
    return (locale_dir or LOCALE_DIR) / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path):
    """A babel catalog read from a .po file, fuzzy entries included."""
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parents[1].name, abort_invalid=True)


def compile_catalog(path: Path) -> bytes:
    """The .mo bytes of a .po file, compiled by babel so no msgfmt is needed."""
    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(path))
    return buffer.getvalue()


def mo_catalog(data: bytes) -> dict:
    """The message table gettext reads from .mo bytes."""
    return dict(gettext.GNUTranslations(io.BytesIO(data))._catalog)


def problems(path: Path) -> list[str]:
    """Untranslated and fuzzy entries of a .po file, one line each."""
    found = []
    for message in read_catalog(path):
        if not message.id:
            continue
        label = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            found.append(f"{path}: fuzzy: {label!r}")
        elif not all(strings):
            found.append(f"{path}: untranslated: {label!r}")
    return found


def msgids(path: Path) -> set[str]:
    """The msgids (singular forms) of a .po file."""
    return {
        message.id[0] if isinstance(message.id, tuple) else message.id
        for message in read_catalog(path)
        if message.id
    }


@contextlib.contextmanager
def _cwd(path: Path):
    """Work inside a directory, as makemessages scans its current directory."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def extract(package_dir: Path = PACKAGE_DIR) -> None:
    """Run makemessages over a package directory into the `locale` directory inside it."""
    if shutil.which("xgettext") is None:
        raise CommandError("xgettext is not installed (apt-get install gettext)")
    locale_dir = package_dir / "locale"
    previous = {loc: _read_text(po_path(loc, locale_dir)) for loc in LOCALES}
    # makemessages files strings by the nearest `locale` directory above them: the one in
    # the directory it runs in, which is also where LOCALE_PATHS points.
    with _cwd(package_dir), override_settings(LOCALE_PATHS=[locale_dir]):
        call_command(
            "makemessages",
            locale=LOCALES,
            domain=DOMAIN,
            no_obsolete=True,
            ignore_patterns=IGNORE,
            add_location="file",
            verbosity=0,
        )
    for loc, old in previous.items():
        path = po_path(loc, locale_dir)
        if old is not None and _STAMP.sub("", old) == _STAMP.sub("", path.read_text()):
            path.write_text(old)


def missing_msgids() -> dict[str, set[str]]:
    """Per language, msgids in the code that its .po lacks (extracted in a scratch copy)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "clientbase"
        shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("vendor", "__pycache__"))
        extract(copy)
        return {
            loc: msgids(po_path(loc, copy / "locale"))
            - (msgids(po_path(loc)) if po_path(loc).exists() else set())
            for loc in LOCALES
        }


def _read_text(path: Path) -> str | None:
    """A file's text, or None when it does not exist yet."""
    return path.read_text() if path.exists() else None


class Command(BaseCommand):
    help = "Update the ru/fr/vi .po files from the code and compile them to .mo (needs no msgfmt)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; fail if a string is untranslated, fuzzy, missing from a "
            ".po file (when xgettext is installed) or a .mo is out of date",
        )
        parser.add_argument(
            "--compile-only",
            action="store_true",
            help="only compile the .po files (no xgettext needed)",
        )

    def handle(self, *args, check, compile_only, **options):
        if check:
            self._check()
            return
        if not compile_only:
            extract()
        for loc in LOCALES:
            path = po_path(loc)
            data = compile_catalog(path)
            mo = path.with_suffix(".mo")
            if not mo.exists() or mo.read_bytes() != data:
                mo.write_bytes(data)
            self.stdout.write(f"{loc}: {len(msgids(path))} strings")
        for line in (line for loc in LOCALES for line in problems(po_path(loc))):
            self.stderr.write(line)

    def _check(self) -> None:
        """Report every defect; exit non-zero if there is any."""
        found = []
        for loc in LOCALES:
            path = po_path(loc)
            if not path.exists():
                found.append(f"{path}: missing")
                continue
            try:
                found += problems(path)
                compiled = mo_catalog(compile_catalog(path))
            except PoFileError as broken:
                found.append(f"{path}: cannot be read: {broken}")
                continue
            mo = path.with_suffix(".mo")
            if not mo.exists() or mo_catalog(mo.read_bytes()) != compiled:
                found.append(f"{mo}: out of date with {path.name}; run `clientbase messages`")
        if shutil.which("xgettext") is None:
            self.stderr.write("xgettext not installed: new strings in the code not checked")
        else:
            found += self._missing()
        for line in found:
            self.stderr.write(line)
        if found:
            raise CommandError(f"{len(found)} translation problem(s)")
        self.stdout.write("translations complete")

    def _missing(self) -> list[str]:
        """Msgids in the code that the .po files lack."""
        return [
            f"{po_path(loc)}: not in the .po yet: {msgid!r}"
            for loc, missing in missing_msgids().items()
            for msgid in sorted(missing)
        ]
