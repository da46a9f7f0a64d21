"""Documents and photos attached to records (CUS-17): checked by content, stored by digest."""

import hashlib
from pathlib import PurePath

from django.core.files.base import File
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.core.audit import audit_create, audit_delete
from clientbase.core.errors import ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import Document, EventCategory

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
_SNIFF_BYTES = 8192
# What a file's first bytes say it is; the name's extension is never trusted alone.
_SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"%PDF-", 0, "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
]
_OFFICE = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
_TEXT = {".txt": "text/plain", ".csv": "text/csv"}

register_event_type(
    "document.added", EventCategory.ACCOUNT, gettext_lazy("Document added: %(name)s")
)
register_event_type(
    "document.removed", EventCategory.ACCOUNT, gettext_lazy("Document removed: %(name)s")
)


def _content_type(head: bytes, name: str) -> str:
    """The file's type from its content, or a refusal naming what is accepted."""
    for magic, offset, content_type in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            if content_type == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return content_type
    suffix = PurePath(name).suffix.lower()
    if head.startswith(b"PK\x03\x04") and suffix in _OFFICE:
        return _OFFICE[suffix]
    if suffix in _TEXT and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as cut:
            # The sample may end inside a character; anything earlier must be clean.
            if cut.start < len(head) - 3:
                raise _refused() from None
        return _TEXT[suffix]
    raise _refused()


def _refused() -> ServiceError:
    return ServiceError(
        _(
            "This file type is not accepted. Attach a PDF, a photo (JPEG, PNG, GIF, WebP), "
            "an office document (DOCX, XLSX, PPTX, ODT, ODS) or a text file (TXT, CSV)."
        ),
        field="file",
    )


def document_add(*, client, upload, by, description: str = "") -> Document:
    """Attach a file to a client after checking its size and what it really is."""
    name = PurePath(upload.name or "").name.strip()
    if len(name) > 200:
        # Shorten the stem, never the suffix: the type is read from it.
        suffix = PurePath(name).suffix[:20]
        name = name[: 200 - len(suffix)] + suffix
    if not name:
        raise ServiceError(_("Choose a file."), field="file")
    if upload.size > MAX_DOCUMENT_BYTES:
        raise ServiceError(
            _("The file is larger than %(size)d MB.") % {"size": MAX_DOCUMENT_BYTES // 2**20},
            field="file",
        )
    if upload.size == 0:
        raise ServiceError(_("The file is empty."), field="file")
    upload.seek(0)
    content_type = _content_type(upload.read(_SNIFF_BYTES), name)
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: upload.read(1024 * 1024), b""):
        digest.update(chunk)
    upload.seek(0)
    document = Document(
        client=client,
        name=name,
        description=description.replace("\x00", "").strip()[:500],
        content_type=content_type,
        size=upload.size,
        sha256=digest.hexdigest(),
        uploaded_by=by,
    )
    with transaction.atomic():
        # Stored by digest: the same file attached twice is kept once on disk.
        if document.file.storage.exists(document.file.field.upload_to(document, name)):
            document.file.name = document.file.field.upload_to(document, name)
        else:
            document.file.save(name, File(upload), save=False)
        document.save()
        audit_create(document, by=by)
        record_event(
            "document.added",
            by=by,
            client=client,
            subject=document,
            details={"name": name},
        )
    return document


def document_delete(*, document: Document, by) -> None:
    """Remove a document from its client; the file goes when no other document uses it."""
    with transaction.atomic():
        audit_delete(document, by=by)
        record_event(
            "document.removed",
            by=by,
            client=document.client,
            subject=document,
            details={"name": document.name},
        )
        path, storage = document.file.name, document.file.storage
        document.delete()
        transaction.on_commit(lambda: _remove_unused(storage, path))


def _remove_unused(storage, path: str) -> None:
    """Remove a stored file unless a document (maybe attached meanwhile) still uses it."""
    if not Document.objects.filter(file=path).exists():
        storage.delete(path)
