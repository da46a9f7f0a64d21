"""Reading a received mail safely: headers, text in any charset, sanitised HTML, attachments.

A mail may be broken in every way (bad MIME, a wrong or missing charset, a header that does
not decode, a huge attachment); reading never fails: what could not be read is recorded as
a problem beside the part that could, so a person can still read the message.
"""

import codecs
import contextlib
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import PurePath

import nh3
from charset_normalizer import from_bytes
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.html import strip_tags

# Headers that stay the same however often a message is delivered, for messages that
# come without a Message-ID.
STABLE_HEADERS = ("from", "to", "cc", "date", "subject", "in-reply-to", "references")
# What a browser may safely show of an incoming HTML mail: no script, style, form or frame,
# no event handlers, and links that open elsewhere without telling where from.
_ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i",
    "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}}
# Charsets Russian and Vietnamese mail arrives in when the sender does not say.
_FALLBACK_CHARSETS = ("utf-8", "cp1251", "koi8-r", "cp1258")
# Single-byte charsets that decode any bytes at all, so a wrong label never fails loudly:
# mail declared in one of them is checked against the others (KOI8-R sent as windows-1251).
_CONFUSABLE_CHARSETS = {
    "cp1251", "koi8-r", "koi8-u", "iso8859-5", "cp866", "mac-cyrillic", "cp1252",
    "iso8859-1", "iso8859-15", "cp1258",
}  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f<>:\"/\\|?*]+")


@dataclass
class ParsedMail:
    """What intake needs of a received mail."""

    message_id: str
    in_reply_to: str
    references: list[str]
    subject: str
    sender_email: str
    sender_name: str
    recipients: list[str]
    cc: list[str]
    return_path: str | None
    auto_submitted: bool
    text: str
    html: str
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    key: str = ""


def _default_header(message: Message, name: str) -> str:
    """A header as the `default` policy reads it; only for the key of mail without Message-ID.

    That key must stay the one earlier versions computed, so that a message stored before
    is still known when it is delivered again.
    """
    try:
        value = message.get(name)
    except Exception:  # the email package raises many kinds on broken headers
        value = _default_raw_header(message, name)
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:
        text = _default_raw_header(message, name) or ""
    if "\ufffd" in text:
        text = _default_raw_header(message, name) or text
    return " ".join(unicodedata.normalize("NFC", text).replace("\x00", "").split())


def _default_raw_header(message: Message, name: str) -> str | None:
    raw = next((v for k, v in message.raw_items() if k.lower() == name), None)
    return None if raw is None else _words(str(raw))


def _words(raw: str) -> str:
    """A raw header value as text: 8-bit bytes in the likeliest charset, RFC 2047 decoded."""
    if any("\udc80" <= c <= "\udcff" for c in raw):
        # Raw 8-bit bytes (not RFC 2047 encoded): read them like an undeclared text part.
        raw = decode_text(raw.encode("ascii", "surrogateescape"), None, [])
    if "=?" in raw:
        # A broken encoded word stays as it is: readable enough for a person.
        with contextlib.suppress(Exception):
            raw = str(make_header(decode_header(raw)))
    return raw


def _clean(text: str, name: str, problems: list[str]) -> str:
    if "\ufffd" in text or "=?" in text:
        problems.append(f"header {name} has characters that could not be decoded")
    return " ".join(unicodedata.normalize("NFC", text).replace("\x00", "").split())


def _header(headers: dict[str, str], name: str, problems: list[str]) -> str:
    """A header as text, decoded by hand (the header registry costs milliseconds a mail)."""
    raw = headers.get(name)
    if raw is None:
        return ""
    return _clean(_words(raw), name, problems)


def _address(value: str, name: str, problems: list[str]) -> tuple[str, str]:
    """Display name and address of an address header: parsed as sent, then decoded.

    Parsing before decoding keeps a decoded comma or quote in a name from splitting it.
    """
    display, address = parseaddr(value)
    return _clean(_words(display), name, problems), _words(address)


def _raw_headers(message: Message) -> dict[str, str]:
    """Each header's first value as received, by lower-case name (what Message.get gives)."""
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), str(value))
    return headers


def _ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value)


def _codec(name: str | None) -> str | None:
    try:
        return codecs.lookup(name).name if name else None
    except LookupError:
        return None


def decode_text(payload: bytes, declared: str | None, problems: list[str]) -> str:
    """Bytes of a text part as text: the declared charset, else the likeliest one."""
    # NFC: Vietnamese in windows-1258 arrives as letters plus combining tone marks.
    # No control characters: PostgreSQL refuses NUL in text, and no person writes them.
    text = unicodedata.normalize("NFC", _decode(payload, declared, problems))
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _decode(payload: bytes, declared: str | None, problems: list[str]) -> str:
    codec = _codec(declared)
    if declared and codec is None:
        problems.append(f"the text names an unknown charset ({declared})")
    elif codec:
        try:
            text = payload.decode(codec)
        except UnicodeDecodeError:
            problems.append(f"the text is not in the charset it names ({declared})")
        else:
            if codec not in _CONFUSABLE_CHARSETS or payload.isascii():
                return text
            # Any bytes decode in a single-byte charset; believe the label unless the
            # text reads as gibberish in it and as language in another one.
            candidates = [codec, *(c for c in _FALLBACK_CHARSETS if c != codec)]
            matches = from_bytes(payload, cp_isolation=candidates)
            if any(_codec(m.encoding) == codec for m in matches) or matches.best() is None:
                return text
            best = matches.best()
            problems.append(f"the text is not in the charset it names ({declared})")
            problems.append(f"read as {_codec(best.encoding)}")
            return str(best)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(payload, cp_isolation=list(_FALLBACK_CHARSETS)).best()
    if best is not None:
        problems.append(f"read as {_codec(best.encoding)}")
        return str(best)
    problems.append("the text could not be decoded; unreadable characters are replaced")
    return payload.decode("utf-8", errors="replace")


def safe_name(name: str, fallback: str = "attachment") -> str:
    """A file name that cannot act: no path, no control or shell characters, short."""
    # Lone surrogates (undecodable bytes in a header) cannot be stored: they become "_".
    name = (name or "").encode("utf-8", "replace").decode("utf-8")
    name = PurePath(name.replace("\\", "/")).name
    name = _UNSAFE_NAME.sub("_", name).strip(" ._")
    if not name:
        return fallback
    if len(name) > 150:
        suffix = PurePath(name).suffix[:20]
        name = name[: 150 - len(suffix)] + suffix
    return name


def sanitize_html(html: str) -> str:
    """HTML of a mail reduced to what cannot run in a browser."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def _html_to_text(html: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", html)
    text = strip_tags(text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _part_bytes(part: Message, problems: list[str]) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        problems.append("a part could not be decoded")
        return b""
    return payload or b""


def _mended(message: Message, mail: ParsedMail) -> Message:
    """A multipart message whose boundary is not in its body, read with the one it uses."""
    if message.is_multipart() or message.get_content_maintype() != "multipart":
        return message
    body = _part_bytes(message, mail.problems)
    found = re.search(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?$", body, re.MULTILINE)
    if found is not None:
        boundary = found.group(1).removesuffix(b"--")
        head = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
        try:
            mended = message_from_bytes(head + body, policy=policy.compat32)
        except Exception:
            mended = None
        if mended is not None and mended.is_multipart() and mended.get_payload():
            mail.problems.append("the message names a MIME boundary it does not use")
            return mended
    # No parts to be found: the body is shown as it came, as plain text.
    plain = Message()
    plain.set_payload(body.decode("ascii", "surrogateescape"))
    plain["Content-Type"] = "text/plain"
    mail.problems.append("the message parts could not be separated; shown as plain text")
    return plain


def _walk(message: Message, mail: ParsedMail) -> None:
    texts: list[str] = []
    htmls: list[str] = []
    message = _mended(message, mail)
    parts = message.walk() if message.is_multipart() else [message]
    for part in parts:
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        try:
            disposition = (part.get_content_disposition() or "").lower()
            filename = part.get_filename()
            if filename and ("=?" in filename or not filename.isascii()):
                # Many mail programs put RFC 2047 words in a file name, against the rules.
                filename = _words(filename)
        except Exception:
            disposition, filename = "", None
            mail.problems.append("a part has a broken disposition")
        is_text = content_type in ("text/plain", "text/html")
        if filename or disposition == "attachment" or not is_text:
            if content_type.startswith("multipart/"):
                continue
            name = safe_name(filename or "", fallback=f"part.{content_type.split('/')[-1]}")
            mail.attachments.append((name, content_type, _part_bytes(part, mail.problems)))
            continue
        payload = _part_bytes(part, mail.problems)
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        text = decode_text(payload, charset, mail.problems)
        (htmls if content_type == "text/html" else texts).append(text)
    mail.text = "\n\n".join(t.strip() for t in texts if t.strip())
    if htmls:
        mail.html = sanitize_html("\n".join(htmls))
        if not mail.text:
            mail.text = _html_to_text(mail.html)


def _defects(message: Message) -> list[str]:
    """The MIME defects of a message and its parts (decoding adds some), each named once."""
    found: list[str] = []
    try:
        for part in message.walk():
            for defect in getattr(part, "defects", []):
                name = f"MIME: {type(defect).__name__}"
                if name not in found:
                    found.append(name)
    except Exception:
        found.append("MIME: the parts could not be listed")
    return found[:5]


def stable_key(raw: bytes) -> str:
    """A digest of the headers that stay the same on redelivery, and of the body."""
    try:
        message: Message = message_from_bytes(raw, policy=policy.default)
    except Exception:
        message = Message()
    values = [_default_header(message, name) for name in STABLE_HEADERS]
    digest = hashlib.sha256()
    for name, value in zip(STABLE_HEADERS, values, strict=True):
        digest.update(name.encode() + b":" + value.encode() + b"\n")
    # The pipe hands over LF line ends and IMAP CRLF, and a relay may add a blank line at
    # the end: the same message must give the same digest by either door.
    text = raw.replace(b"\r\n", b"\n")
    _, separator, body = text.partition(b"\n\n")
    if not separator or not any(values):
        # Nothing that looks like a header block: then all of it tells messages apart.
        body = text
    digest.update(hashlib.sha256(body.rstrip()).digest())
    return "sha256:" + digest.hexdigest()


def parse_mail(raw: bytes) -> ParsedMail:
    """Read a raw RFC 5322 message; never raises on bad input."""
    problems: list[str] = []
    try:
        # compat32 leaves headers as sent: decoding the few we need by hand is many times
        # cheaper than the header registry of the `default` policy.
        message: Message = _PARSER.parsebytes(raw)
    except Exception:
        problems.append("the message could not be parsed as MIME")
        message = Message()
    headers = _raw_headers(message)
    sender_name, sender_email = _address(headers.get("from", ""), "from", problems)
    if not sender_email:
        sender_email = _address(headers.get("reply-to", ""), "reply-to", problems)[1]
        problems.append("the message has no sender address")
    # "<>" (the null sender of bounces and auto-replies), however the relay spaced it.
    return_path = (
        _header(headers, "return-path", problems).replace(" ", "")
        if "return-path" in headers
        else None
    )
    auto = _header(headers, "auto-submitted", problems).lower()
    precedence = _header(headers, "precedence", problems).lower()
    ids = _ids(_header(headers, "message-id", problems))
    mail = ParsedMail(
        message_id=ids[0] if ids else "",
        in_reply_to=(_ids(_header(headers, "in-reply-to", problems)) or [""])[0],
        references=_ids(_header(headers, "references", problems))[-50:],
        subject=_header(headers, "subject", problems)[:300],
        sender_email=sender_email.strip().lower()[:254],
        sender_name=sender_name.strip()[:200],
        recipients=_recipients(
            [headers.get(h, "") for h in ("to", "delivered-to", "x-original-to", "envelope-to")]
        ),
        cc=_recipients([headers.get("cc", "")]),
        return_path=return_path,
        auto_submitted=(auto not in ("", "no"))
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or any(h in headers for h in ("x-autoreply", "x-autorespond", "x-auto-response-suppress")),
        text="",
        html="",
        problems=problems,
    )
    try:
        _walk(message, mail)
    except Exception:
        mail.problems.append("the message body could not be read; see the original")
    mail.problems[:0] = _defects(message)
    if not (mail.text or mail.attachments or mail.html):
        mail.problems.append("the message has no body")
    mail.key = mail.message_id or stable_key(raw)
    return mail


_PARSER = BytesParser(policy=policy.compat32)


def parse_many(raws: list[bytes]) -> list[ParsedMail]:
    """`parse_mail` of each message: what a second process reads for a batch."""
    return [parse_mail(raw) for raw in raws]


def _recipients(values: list[str]) -> list[str]:
    return [_words(a).strip().lower() for _n, a in getaddresses(values) if a]


def human_size(size: int) -> str:
    """A byte count as an operator reads it: 10 MB, 512 KB, 100 bytes."""
    if size >= 2**20:
        return f"{size // 2**20} MB"
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def store_attachment(message, name: str, content_type: str, content: bytes):
    """Keep a file of a ticket message, stored by digest; one over the limit is listed only."""
    attachment = new_attachment(message, name, content_type, content)
    attachment.save()
    return attachment


def new_attachment(message, name: str, content_type: str, content: bytes):
    """`store_attachment` but for the row, left unsaved for a bulk insert; the file is kept."""
    from clientbase.support.models import Attachment

    name = safe_name(name)
    limit = settings.SUPPORT_ATTACHMENT_MAX_BYTES
    attachment = Attachment(
        message=message,
        name=name,
        content_type=content_type[:100] or "application/octet-stream",
        size=len(content),
    )
    if len(content) > limit:
        attachment.dropped_reason = f"larger than the limit of {human_size(limit)}; not kept"
        return attachment
    attachment.sha256 = hashlib.sha256(content).hexdigest()
    path = attachment.file.field.upload_to(attachment, name)
    storage = attachment.file.storage
    if storage.exists(path):
        attachment.file.name = path
    else:
        attachment.file.save(name, ContentFile(content), save=False)
    return attachment
