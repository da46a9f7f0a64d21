"""Documents and photos on a client (CUS-17): checked by content, stored once by digest."""

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from clientbase.clients.models import Client
from clientbase.clients.services import client_create
from clientbase.core import documents
from clientbase.core.documents import document_add, document_delete
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditAction, AuditEntry, Document, Event

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48
REFUSED = (
    "This file type is not accepted. Attach a PDF, a photo (JPEG, PNG, GIF, WebP), "
    "an office document (DOCX, XLSX, PPTX, ODT, ODS) or a text file (TXT, CSV)."
)
NOT_FOUND = {
    "type": "about:blank",
    "title": "Not found",
    "status": 404,
    "detail": "No such record, or not one you may see.",
    "errors": [],
}
FORBIDDEN = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "Your role does not allow this action.",
    "errors": [],
}


def _upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    """A file as the browser sends it; the type it claims is never believed."""
    return SimpleUploadedFile(name, content, content_type=content_type)


def _stored(media: Path) -> list[str]:
    """The files under MEDIA_ROOT/documents, as paths relative to it."""
    root = media / "documents"
    if not root.exists():
        return []
    return sorted(str(p.relative_to(media)) for p in root.rglob("*") if p.is_file())


def _path_of(content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    return f"documents/{digest[:2]}/{digest}"


def _body(response) -> bytes:
    """A file response's bytes; reading them to the end closes the file.

    The test client closes a streamed response itself once read; closing it again would
    fire request_finished and close the test's database connection on PostgreSQL.
    """
    return b"".join(response.streaming_content)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """A MEDIA_ROOT of the test's own, so nothing is written under var/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ann(make_user):
    """A billing clerk: sees every client, may change them."""
    return make_user("ann", role="billing", unit="company")


@pytest.fixture
def acme(ann, media) -> Client:
    return client_create(by=ann, company_name="Acme", email="acme@example.com")


@pytest.fixture
def people(make_user, media):
    """A seller of team A with her client, a seller of team B with his, and a support agent."""
    sam = make_user("sam", role="sales", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_b")
    return {
        "sam": sam,
        "bob": bob,
        "sid": make_user("sid", role="support", unit="company"),
        "a1": client_create(by=sam, company_name="A1", email="a1@example.com"),
        "b1": client_create(by=bob, company_name="B1", email="b1@example.com"),
    }


# --- what is accepted ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("contract.pdf", PDF, "application/pdf"),
        ("photo.png", PNG, "image/png"),
        ("photo.jpg", JPEG, "image/jpeg"),
        ("anim.gif", GIF, "image/gif"),
        ("photo.webp", WEBP, "image/webp"),
        # the content decides, not the name
        ("scan.bin", PDF, "application/pdf"),
        ("photo.pdf", PNG, "image/png"),
        (
            "REPORT.DOCX",
            ZIP,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("sheet.xlsx", ZIP, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (
            "slides.pptx",
            ZIP,
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        ("letter.odt", ZIP, "application/vnd.oasis.opendocument.text"),
        ("table.ods", ZIP, "application/vnd.oasis.opendocument.spreadsheet"),
        ("notes.txt", "Привет, Hà Nội\n".encode(), "text/plain"),
        ("list.CSV", b"number;name\n1;Acme\n", "text/csv"),
    ],
    ids=[
        "pdf",
        "png",
        "jpeg",
        "gif",
        "webp",
        "pdf-named-bin",
        "png-named-pdf",
        "docx",
        "xlsx",
        "pptx",
        "odt",
        "ods",
        "txt",
        "csv",
    ],
)
def test_a_file_is_accepted_by_its_content(ann, acme, media, name, content, content_type):
    # when a file is attached, its browser claiming some other type
    document = document_add(
        client=acme, upload=_upload(name, content, "text/html"), by=ann, description=" Signed "
    )
    # then its type is what its bytes say, and it is stored under its digest
    document.refresh_from_db()
    assert (
        document.client,
        document.name,
        document.description,
        document.content_type,
        document.size,
        document.sha256,
        document.uploaded_by,
    ) == (
        acme,
        name,
        "Signed",
        content_type,
        len(content),
        hashlib.sha256(content).hexdigest(),
        ann,
    )
    assert document.file.name == _path_of(content)
    assert (media / _path_of(content)).read_bytes() == content
    assert _stored(media) == [_path_of(content)]


def test_an_attached_document_is_audited_with_its_stored_path(ann, acme):
    document = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    created = AuditEntry.objects.get(object_type__model="document")
    assert (created.action, created.object_id) == (AuditAction.CREATE, str(document.pk))
    assert created.changes["file"] == {"before": None, "after": _path_of(PDF)}


def test_a_text_file_cut_inside_a_character_at_the_sample_end_is_accepted(ann, acme):
    # given a text whose first 8 KiB end in the middle of a two-byte letter
    content = b"a" * 8191 + "é".encode() + b"\n"
    document = document_add(client=acme, upload=_upload("long.txt", content), by=ann)
    assert (document.content_type, document.size) == ("text/plain", 8194)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("invoice.pdf", EXE),
        ("invoice.exe", EXE),
        ("page.pdf", b"<html><script>alert(1)</script></html>"),
        ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'),
        ("archive.zip", ZIP),
        ("macro.docm", ZIP),
        ("notes.txt", b"text\x00with a NUL"),
        ("latin1.csv", "numéro;société\n1;Café\n".encode("latin-1")),
        ("notes", b"plain words"),
        ("fake.webp", b"XXXX\x1a\x00\x00\x00WEBPVP8L"),
    ],
    ids=[
        "exe-named-pdf",
        "exe",
        "html-named-pdf",
        "svg",
        "zip",
        "docm",
        "txt-with-nul",
        "latin1-csv",
        "no-extension",
        "webp-without-riff",
    ],
)
def test_a_file_of_another_type_is_refused_and_nothing_is_stored(ann, acme, media, name, content):
    with pytest.raises(ServiceError) as refused:
        document_add(client=acme, upload=_upload(name, content, "application/pdf"), by=ann)
    assert refused.value.message_dict == {"file": [REFUSED]}
    assert Document.objects.count() == 0
    assert _stored(media) == []
    assert Event.objects.filter(type="document.added").count() == 0


def test_an_empty_file_is_refused(ann, acme, media):
    with pytest.raises(ServiceError) as refused:
        document_add(client=acme, upload=_upload("empty.pdf", b""), by=ann)
    assert refused.value.message_dict == {"file": ["The file is empty."]}
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_a_file_without_a_name_is_refused(ann, acme, media):
    upload = _upload("   ", PDF)
    with pytest.raises(ServiceError) as refused:
        document_add(client=acme, upload=upload, by=ann)
    assert refused.value.message_dict == {"file": ["Choose a file."]}
    assert (Document.objects.count(), _stored(media)) == (0, [])


ONE_MB_PDF = PDF + b"0" * (2**20 - len(PDF))


def test_a_file_over_the_limit_is_refused(ann, acme, media, monkeypatch):
    # given a limit of 1 MB
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 2**20)
    # when a file one byte over it is attached
    with pytest.raises(ServiceError) as refused:
        document_add(client=acme, upload=_upload("big.pdf", ONE_MB_PDF + b"0"), by=ann)
    # then it is refused, and nothing is stored
    assert refused.value.message_dict == {"file": ["The file is larger than 1 MB."]}
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_a_file_of_exactly_the_limit_is_taken(ann, acme, media, monkeypatch):
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 2**20)
    document = document_add(client=acme, upload=_upload("big.pdf", ONE_MB_PDF), by=ann)
    assert document.size == 2**20
    assert _stored(media) == [_path_of(ONE_MB_PDF)]


def test_the_default_limit_is_20_mb():
    assert documents.MAX_DOCUMENT_BYTES == 20 * 1024 * 1024


def test_the_name_keeps_no_folders_and_the_description_is_cut(ann, acme):
    document = document_add(
        client=acme,
        upload=_upload("../../etc/scan.pdf", PDF),
        by=ann,
        description="d" * 600,
    )
    assert (document.name, len(document.description)) == ("scan.pdf", 500)


def test_a_long_name_keeps_its_extension(ann, acme):
    name = "x" * 210 + ".csv"
    document = document_add(client=acme, upload=_upload(name, b"a;b\n"), by=ann)
    assert (document.content_type, document.name[-4:], len(document.name)) == (
        "text/csv",
        ".csv",
        200,
    )


# --- stored once, removed with the last ----------------------------------------------------


def test_the_same_file_twice_is_stored_once_and_goes_with_the_last_document(
    ann, acme, media, django_capture_on_commit_callbacks
):
    # given the same PDF attached to two clients under two names
    other = client_create(by=ann, company_name="Other", email="other@example.com")
    first = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    second = document_add(client=other, upload=_upload("copy.pdf", PDF), by=ann)
    # then there is one file on disk for both
    assert first.file.name == second.file.name == _path_of(PDF)
    assert _stored(media) == [_path_of(PDF)]
    # when the first is removed, the file stays for the second
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        document_delete(document=first, by=ann)
    # the check after commit finds the other document, and keeps the file
    assert len(callbacks) == 1
    assert _stored(media) == [_path_of(PDF)]
    assert list(Document.objects.values_list("name", flat=True)) == ["copy.pdf"]
    # when the second is removed too, the file goes, once the removal is committed
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        document_delete(document=second, by=ann)
        assert _stored(media) == [_path_of(PDF)]
    assert len(callbacks) == 1
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_a_removal_rolled_back_keeps_the_file(ann, acme, media, django_capture_on_commit_callbacks):
    document = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        document_delete(document=document, by=ann)
        raise RuntimeError("the caller's transaction fails")
    assert callbacks == []
    assert list(Document.objects.values_list("name", flat=True)) == ["contract.pdf"]
    assert _stored(media) == [_path_of(PDF)]


def test_the_same_file_attached_while_the_last_copy_is_removed_survives(
    ann, acme, media, django_capture_on_commit_callbacks
):
    # given a PDF attached once
    old = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    # when it is removed, and before the removal's after-commit work runs another clerk
    # attaches the same file
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document_delete(document=old, by=ann)
    new = document_add(client=acme, upload=_upload("contract-again.pdf", PDF), by=ann)
    for callback in callbacks:
        callback()
    # then the new document still has its file
    assert new.file.name == _path_of(PDF)
    assert _stored(media) == [_path_of(PDF)]


# --- history -------------------------------------------------------------------------------


def test_adding_and_removing_are_in_the_newsfeed_and_the_audit_log(
    ann, acme, django_capture_on_commit_callbacks
):
    document = document_add(
        client=acme, upload=_upload("contract.pdf", PDF), by=ann, description="Signed"
    )
    pk = document.pk
    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=document, by=ann)
    events = Event.objects.filter(type__startswith="document.").order_by("id")
    assert [
        (e.type, e.category, e.client, e.actor, e.subject_type.model, e.subject_id, e.details)
        for e in events
    ] == [
        ("document.added", "account", acme, ann, "document", str(pk), {"name": "contract.pdf"}),
        ("document.removed", "account", acme, ann, "document", str(pk), {"name": "contract.pdf"}),
    ]
    assert [e.message for e in events] == [
        "Document added: contract.pdf",
        "Document removed: contract.pdf",
    ]
    entries = AuditEntry.objects.filter(object_type__model="document").order_by("id")
    assert [(e.action, e.actor, e.object_id, e.object_repr) for e in entries] == [
        (AuditAction.CREATE, ann, str(pk), "contract.pdf"),
        (AuditAction.DELETE, ann, str(pk), "contract.pdf"),
    ]
    created, deleted = entries
    assert created.changes["sha256"] == {"before": None, "after": hashlib.sha256(PDF).hexdigest()}
    assert created.changes["content_type"] == {"before": None, "after": "application/pdf"}
    assert deleted.changes["name"] == {"before": "contract.pdf", "after": None}
    assert deleted.changes["file"] == {"before": _path_of(PDF), "after": None}


def test_a_refused_file_leaves_no_history(ann, acme):
    with pytest.raises(ServiceError):
        document_add(client=acme, upload=_upload("virus.pdf", EXE), by=ann)
    assert Event.objects.filter(type__startswith="document.").count() == 0
    assert AuditEntry.objects.filter(object_type__model="document").count() == 0


# --- the profile's pages -------------------------------------------------------------------


def test_attaching_from_the_profile(signed_in, ann, acme, media):
    http = signed_in(ann)
    response = http.post(
        f"/clients/{acme.pk}/documents/",
        {"file": _upload("contract.pdf", PDF), "description": "Signed"},
    )
    assert (response.status_code, response["Location"]) == (
        302,
        f"/clients/{acme.pk}/?tab=documents",
    )
    document = Document.objects.get()
    assert (document.client, document.name, document.description, document.content_type) == (
        acme,
        "contract.pdf",
        "Signed",
        "application/pdf",
    )
    page = http.get(response["Location"])
    assert [str(m) for m in page.context["messages"]] == ["Document attached."]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"file": ("virus.pdf", EXE)}, REFUSED),
        ({"file": ("empty.pdf", b"")}, "The submitted file is empty."),
        ({"description": "no file"}, "This field is required."),
        (
            {"file": ("a.pdf", PDF), "description": "d" * 501},
            "Ensure this value has at most 500 characters (it has 501).",
        ),
    ],
    ids=["exe-as-pdf", "empty", "no-file", "long-description"],
)
def test_a_refused_file_on_the_profile_says_why(signed_in, ann, acme, media, data, message):
    if "file" in data:
        data = data | {"file": _upload(*data["file"])}
    http = signed_in(ann)
    response = http.post(f"/clients/{acme.pk}/documents/", data, follow=True)
    assert response.redirect_chain == [(f"/clients/{acme.pk}/?tab=documents", 302)]
    assert [str(m) for m in response.context["messages"]] == [message]
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_the_documents_tab_lists_them_newest_first(signed_in, ann, acme):
    document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann, description="Signed")
    photo = document_add(client=acme, upload=_upload("shop front.png", PNG), by=ann)
    page = signed_in(ann).get(f"/clients/{acme.pk}/?tab=documents")
    assert page.status_code == 200
    assert [d.name for d in page.context["documents"]] == ["shop front.png", "contract.pdf"]
    assert page.context["documents_count"] == 2
    html = page.content.decode()
    assert ">contract.pdf</a>" in html
    assert "<div>Signed</div>" in html
    # a photo shows as a thumbnail, loaded inline
    assert f'src="/clients/{acme.pk}/documents/{photo.pk}/?inline=1"' in html
    # a clerk who may change the client gets the upload form and the remove buttons
    assert f'action="/clients/{acme.pk}/documents/"' in html
    assert html.count(f'action="/clients/{acme.pk}/documents/') == 3


def test_the_documents_tab_without_the_right_to_change(signed_in, people):
    document_add(client=people["a1"], upload=_upload("contract.pdf", PDF), by=people["sam"])
    page = signed_in(people["sid"]).get(f"/clients/{people['a1'].pk}/?tab=documents")
    html = page.content.decode()
    assert ">contract.pdf</a>" in html
    assert f'action="/clients/{people["a1"].pk}/documents/' not in html


def test_an_empty_documents_tab(signed_in, ann, acme):
    page = signed_in(ann).get(f"/clients/{acme.pk}/?tab=documents")
    assert "No documents yet." in page.content.decode()
    assert page.context["documents_count"] == 0


def test_a_download_is_an_attachment_of_its_checked_type(signed_in, ann, acme):
    document = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    http = signed_in(ann)
    for query in ("", "?inline=1"):
        # a PDF is never shown inline, even when asked
        response = http.get(f"/clients/{acme.pk}/documents/{document.pk}/{query}")
        assert response.status_code == 200
        assert (
            response["Content-Type"],
            response["Content-Disposition"],
            response["X-Content-Type-Options"],
            response["Content-Length"],
        ) == ("application/pdf", 'attachment; filename="contract.pdf"', "nosniff", str(len(PDF)))
        assert _body(response) == PDF


def test_a_photo_is_shown_inline_only_when_asked(signed_in, ann, acme):
    photo = document_add(client=acme, upload=_upload("shop.png", PNG), by=ann)
    http = signed_in(ann)
    inline = http.get(f"/clients/{acme.pk}/documents/{photo.pk}/?inline=1")
    assert (inline["Content-Type"], inline["Content-Disposition"]) == (
        "image/png",
        'inline; filename="shop.png"',
    )
    assert inline["X-Content-Type-Options"] == "nosniff"
    assert _body(inline) == PNG
    download = http.get(f"/clients/{acme.pk}/documents/{photo.pk}/?inline=yes")
    assert download["Content-Disposition"] == 'attachment; filename="shop.png"'
    assert _body(download) == PNG


def test_a_name_in_another_alphabet_is_sent_encoded(signed_in, ann, acme):
    document = document_add(client=acme, upload=_upload("Договор №5.pdf", PDF), by=ann)
    response = signed_in(ann).get(f"/clients/{acme.pk}/documents/{document.pk}/")
    assert response["Content-Disposition"] == (
        f"attachment; filename*=utf-8''{quote('Договор №5.pdf')}"
    )
    assert _body(response) == PDF


def test_removing_from_the_profile(signed_in, ann, acme, media, django_capture_on_commit_callbacks):
    document = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    http = signed_in(ann)
    path = f"/clients/{acme.pk}/documents/{document.pk}/delete/"
    # a GET does not remove
    assert http.get(path).status_code == 405
    assert Document.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = http.post(path, follow=True)
    assert response.redirect_chain == [(f"/clients/{acme.pk}/?tab=documents", 302)]
    assert [str(m) for m in response.context["messages"]] == ["Document removed."]
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_a_document_is_reached_only_through_its_own_client(signed_in, ann, acme):
    other = client_create(by=ann, company_name="Other", email="other@example.com")
    document = document_add(client=other, upload=_upload("contract.pdf", PDF), by=ann)
    http = signed_in(ann)
    assert http.get(f"/clients/{acme.pk}/documents/{document.pk}/").status_code == 404
    assert http.post(f"/clients/{acme.pk}/documents/{document.pk}/delete/").status_code == 404
    assert http.get(f"/clients/{acme.pk}/documents/999999/").status_code == 404
    assert Document.objects.count() == 1


def test_attaching_to_a_client_out_of_sight_is_404(signed_in, api_client, people, media):
    b1 = people["b1"]
    ui = signed_in(people["sam"]).post(
        f"/clients/{b1.pk}/documents/", {"file": _upload("mine.pdf", PDF)}
    )
    api = api_client(people["sam"]).post(
        f"/api/v1/clients/{b1.pk}/documents", {"file": _upload("mine.pdf", PDF), "description": ""}
    )
    assert ui.status_code == 404
    assert (api.status_code, api.json()) == (404, NOT_FOUND)
    assert (Document.objects.count(), _stored(media)) == (0, [])
    assert Event.objects.filter(type__startswith="document.").count() == 0


def test_attaching_without_the_right_to_change_is_403(signed_in, api_client, people, media):
    a1 = people["a1"]
    ui = signed_in(people["sid"]).post(
        f"/clients/{a1.pk}/documents/", {"file": _upload("mine.pdf", PDF)}
    )
    api = api_client(people["sid"]).post(
        f"/api/v1/clients/{a1.pk}/documents", {"file": _upload("mine.pdf", PDF), "description": ""}
    )
    assert ui.status_code == 403
    assert (api.status_code, api.json()) == (403, FORBIDDEN)
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_a_client_out_of_sight_is_404_for_every_document_page(signed_in, people, media):
    # given a document of team B's client
    b1 = people["b1"]
    document = document_add(client=b1, upload=_upload("contract.pdf", PDF), by=people["bob"])
    http = signed_in(people["sam"])
    # when a seller of team A downloads, attaches or removes
    base = f"/clients/{b1.pk}/documents/"
    responses = [
        http.get(f"{base}{document.pk}/"),
        http.get(f"{base}{document.pk}/?inline=1"),
        http.post(base, {"file": _upload("mine.pdf", PDF + b"x")}),
        http.post(f"{base}{document.pk}/delete/"),
        http.get(f"/clients/{b1.pk}/?tab=documents"),
    ]
    # then each is the same 404 as a client that does not exist, and nothing changed
    assert [r.status_code for r in responses] == [404] * 5
    assert list(Document.objects.values_list("name", flat=True)) == ["contract.pdf"]
    assert _stored(media) == [_path_of(PDF)]


def test_without_the_right_to_change_one_may_download_but_not_attach_or_remove(
    signed_in, people, media
):
    # given a support agent, who sees every client but may not change them
    a1 = people["a1"]
    document = document_add(client=a1, upload=_upload("contract.pdf", PDF), by=people["sam"])
    http = signed_in(people["sid"])
    base = f"/clients/{a1.pk}/documents/"
    # when they attach and remove, it is 403 and nothing changed
    assert http.post(base, {"file": _upload("mine.pdf", PDF + b"x")}).status_code == 403
    assert http.post(f"{base}{document.pk}/delete/").status_code == 403
    assert list(Document.objects.values_list("name", flat=True)) == ["contract.pdf"]
    assert _stored(media) == [_path_of(PDF)]
    assert Event.objects.filter(type__startswith="document.").count() == 1
    # while downloading is allowed
    response = http.get(f"{base}{document.pk}/")
    assert (response.status_code, _body(response)) == (200, PDF)


def test_a_stranger_cannot_attach(client, acme, media):
    # a stranger is sent to sign in, and nothing is stored
    response = client.post(f"/clients/{acme.pk}/documents/", {"file": _upload("a.pdf", PDF)})
    assert (response.status_code, response["Location"]) == (
        302,
        f"/accounts/login/?next=/clients/{acme.pk}/documents/",
    )
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_strangers_are_sent_to_sign_in(client, ann, acme):
    document = document_add(client=acme, upload=_upload("contract.pdf", PDF), by=ann)
    path = f"/clients/{acme.pk}/documents/{document.pk}/"
    response = client.get(path)
    assert (response.status_code, response["Location"]) == (
        302,
        f"/accounts/login/?next={path}",
    )


# --- the API -------------------------------------------------------------------------------


def _shown(document: Document) -> dict:
    document.refresh_from_db()
    return {
        "id": document.pk,
        "name": document.name,
        "description": document.description,
        "content_type": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "uploaded_by_id": document.uploaded_by_id,
        # as JSON has it: milliseconds and "Z"
        "uploaded_at": DjangoJSONEncoder().default(document.uploaded_at),
    }


def test_the_api_attaches_lists_downloads_and_removes(
    api_client, ann, acme, media, django_capture_on_commit_callbacks
):
    http = api_client(ann)
    base = f"/api/v1/clients/{acme.pk}/documents"
    # when a photo is posted as multipart
    response = http.post(
        base, {"file": _upload("shop.jpg", JPEG, "image/png"), "description": "Front"}
    )
    # then it is created with its checked type
    assert response.status_code == 201
    document = Document.objects.get()
    assert response.json() == _shown(document)
    assert (response.json()["content_type"], response.json()["description"]) == (
        "image/jpeg",
        "Front",
    )
    # and the list has it
    assert http.get(base).json() == [_shown(document)]
    # and its content comes back as an attachment the browser must not sniff
    content = http.get(f"{base}/{document.pk}/content")
    assert (
        content.status_code,
        content["Content-Type"],
        content["Content-Disposition"],
        content["X-Content-Type-Options"],
    ) == (200, "image/jpeg", 'attachment; filename="shop.jpg"', "nosniff")
    assert _body(content) == JPEG
    # when it is deleted
    with django_capture_on_commit_callbacks(execute=True):
        deleted = http.delete(f"{base}/{document.pk}")
    # then it is gone, with its file
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert http.get(base).json() == []
    assert (Document.objects.count(), _stored(media)) == (0, [])
    assert list(
        Event.objects.filter(type__startswith="document.")
        .order_by("id")
        .values_list("type", flat=True)
    ) == ["document.added", "document.removed"]


def test_the_api_takes_a_file_without_a_description(api_client, ann, acme, media):
    response = api_client(ann).post(
        f"/api/v1/clients/{acme.pk}/documents", {"file": _upload("contract.pdf", PDF)}
    )
    assert response.status_code == 201
    assert response.json()["description"] == ""
    assert Document.objects.get().name == "contract.pdf"


def test_the_api_lists_newest_first(api_client, ann, acme):
    older = document_add(client=acme, upload=_upload("a.pdf", PDF), by=ann)
    newer = document_add(client=acme, upload=_upload("b.png", PNG), by=ann)
    listed = api_client(ann).get(f"/api/v1/clients/{acme.pk}/documents").json()
    assert [d["id"] for d in listed] == [newer.pk, older.pk]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("invoice.pdf", EXE, REFUSED),
        ("empty.pdf", b"", "The file is empty."),
    ],
    ids=["exe-as-pdf", "empty"],
)
def test_the_api_refuses_a_bad_file_at_the_file_field(
    api_client, ann, acme, media, name, content, message
):
    response = api_client(ann).post(
        f"/api/v1/clients/{acme.pk}/documents",
        {"file": _upload(name, content), "description": ""},
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Refused",
        "status": 422,
        "detail": message,
        "errors": [{"field": "file", "message": message}],
    }
    assert (Document.objects.count(), _stored(media)) == (0, [])


def test_the_api_needs_a_file(api_client, ann, acme, media):
    response = api_client(ann).post(
        f"/api/v1/clients/{acme.pk}/documents", {"description": "d" * 501}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["file"]
    assert Document.objects.count() == 0


def test_the_api_hides_documents_of_clients_out_of_sight(api_client, people, media):
    b1 = people["b1"]
    document = document_add(client=b1, upload=_upload("contract.pdf", PDF), by=people["bob"])
    http = api_client(people["sam"])
    base = f"/api/v1/clients/{b1.pk}/documents"
    responses = [
        http.get(base),
        http.post(base, {"file": _upload("mine.pdf", PDF + b"x"), "description": ""}),
        http.get(f"{base}/{document.pk}/content"),
        http.delete(f"{base}/{document.pk}"),
    ]
    assert [(r.status_code, r.json()) for r in responses] == [(404, NOT_FOUND)] * 4
    assert list(Document.objects.values_list("name", flat=True)) == ["contract.pdf"]
    assert _stored(media) == [_path_of(PDF)]


def test_the_api_reaches_a_document_only_through_its_own_client(api_client, people):
    a1, b1 = people["a1"], people["b1"]
    document = document_add(client=b1, upload=_upload("contract.pdf", PDF), by=people["bob"])
    # the support agent sees both clients, but the document is B1's
    http = api_client(people["sid"])
    assert http.get(f"/api/v1/clients/{a1.pk}/documents/{document.pk}/content").status_code == 404
    own = http.get(f"/api/v1/clients/{b1.pk}/documents/{document.pk}/content")
    assert (own.status_code, _body(own)) == (200, PDF)


def test_the_api_without_the_right_to_change_is_403_and_nothing_changes(api_client, people, media):
    a1 = people["a1"]
    document = document_add(client=a1, upload=_upload("contract.pdf", PDF), by=people["sam"])
    http = api_client(people["sid"])
    base = f"/api/v1/clients/{a1.pk}/documents"
    posted = http.post(base, {"file": _upload("mine.pdf", PDF + b"x"), "description": ""})
    deleted = http.delete(f"{base}/{document.pk}")
    assert [(r.status_code, r.json()) for r in (posted, deleted)] == [(403, FORBIDDEN)] * 2
    assert list(Document.objects.values_list("name", flat=True)) == ["contract.pdf"]
    assert _stored(media) == [_path_of(PDF)]
    # while reading is allowed
    assert [d["name"] for d in http.get(base).json()] == ["contract.pdf"]
