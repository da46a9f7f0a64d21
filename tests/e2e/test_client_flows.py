"""A clerk's and an administrator's client flows in a real browser: duplicates, custom fields,
merge, delete, documents, groups of companies, advanced search and a large import."""

import csv
import io
import struct
import zlib

from playwright.sync_api import expect

from clientbase.clients.models import Client, Contact
from clientbase.clients.services import client_create, contact_add
from clientbase.core.models import CustomField, Document
from tests.conftest import PASSWORD

# A 10,000-row import runs inside the request that starts it (the test task backend runs
# tasks at once): give its click minutes, not the default seconds.
IMPORT_TIMEOUT_MS = 600_000
IMPORT_ROWS = 10_000


def _png(width: int = 16, height: int = 16) -> bytes:
    """A small opaque red PNG, written by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
# The start of a Windows program: "MZ", then the DOS header.
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48


def _signed_in_admin(page, sign_in, admin_user):
    sign_in(page, admin_user.username, PASSWORD)
    return admin_user


def _open_actions(page, item_id: str) -> None:
    """Open the profile's Actions dropdown and pick one of its entries."""
    page.click("#quick-actions")
    expect(page.locator(f"#{item_id}")).to_be_visible()
    page.click(f"#{item_id}")


def _fact(page, label: str):
    """The value next to a label in the profile's facts card."""
    return page.locator(".client-facts dt", has_text=label).locator(
        "xpath=following-sibling::dd[1]"
    )


# --- 1. duplicate hints while typing ------------------------------------------------------------


def test_duplicate_hints_under_email_and_phone_and_the_save_is_refused_at_the_field(
    page, sign_in, admin_user, screenshot
):
    alpha = client_create(
        by=admin_user,
        company_name="Alpha SARL",
        email="alpha@example.com",
        phone="+33612345678",
        country="FR",
    )
    _signed_in_admin(page, sign_in, admin_user)
    page.goto("/clients/new/?mode=simple")
    expect(page.locator("h1")).to_have_text("Add a client")

    # the same email in another case: a warning under the email, linking to the client
    with page.expect_response(lambda r: "/clients/duplicates/" in r.url):
        page.fill("#id_email", "ALPHA@Example.COM")
    email_hint = page.locator("#duplicates-email .duplicate-warning")
    expect(email_hint).to_have_count(1)
    expect(email_hint).to_have_text(f"Already the email of {alpha.number} Alpha SARL")
    expect(email_hint.locator("a")).to_have_text(f"{alpha.number} Alpha SARL")
    expect(email_hint.locator("a")).to_have_attribute("href", f"/clients/{alpha.pk}/")

    # the national form of the phone, read with the country: a warning under the phone
    page.fill("#id_country", "FR")
    with page.expect_response(lambda r: "/clients/duplicates/" in r.url and "phone=" in r.url):
        page.fill("#id_phone", "06 12 34 56 78")
    phone_hint = page.locator("#duplicates-phone .duplicate-warning")
    expect(phone_hint).to_have_count(1)
    expect(phone_hint).to_have_text(f"Already used by {alpha.number} Alpha SARL")
    expect(phone_hint.locator("a")).to_have_attribute("href", f"/clients/{alpha.pk}/")
    screenshot(page, "flows_duplicate_hints")

    # saving anyway: refused at the email field, nothing added
    page.select_option("#id_kind", "company")
    page.fill("#id_company_name", "Alpha Bis")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator(".field-email .invalid-feedback")).to_have_text(
        f"Client {alpha.number} already uses this email."
    )
    expect(page.locator(".invalid-feedback")).to_have_count(1)
    screenshot(page, "flows_duplicate_refused")
    assert list(Client.everything.values_list("number", "email")) == [
        (alpha.number, "alpha@example.com")
    ]


# --- 2. custom fields ---------------------------------------------------------------------------


def test_admin_adds_a_conditional_custom_field_and_the_simple_form_enforces_it(
    page, sign_in, admin_user, screenshot
):
    _signed_in_admin(page, sign_in, admin_user)
    page.goto("/")
    page.click("li[data-section=settings] > a.dropdown-toggle")
    page.click("li[data-section=settings] .dropdown-item:has-text('Custom fields')")
    expect(page.locator("main h1")).to_have_text("Custom fields")
    page.click("a:has-text('Add a field')")
    expect(page.locator("main h1")).to_have_text("Add a custom field")

    page.fill("#id_code", "code_1c")
    page.fill("#id_label", "1C code")
    page.select_option("#id_type", label="Text")
    page.uncheck("#id_for_individuals")
    page.check("#id_for_companies")
    page.check("#id_in_simple_form")
    page.select_option("#id_required_when_field", "country")
    page.fill("#id_required_when_value", "RU")
    screenshot(page, "flows_custom_field_form")
    page.click("button[type=submit]:has-text('Save')")

    expect(page.locator("main h1")).to_have_text("Custom fields")
    expect(page.locator(".alert-success")).to_have_text("Custom field 1C code saved.")
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td")).to_have_text(
        ["1C code", "code_1c", "Text", "Companies", "when Country = RU", "", ""]
    )
    screenshot(page, "flows_custom_field_list")
    field = CustomField.objects.get()
    assert (
        field.code,
        field.label,
        field.type,
        field.for_individuals,
        field.for_companies,
        field.in_simple_form,
        field.required,
        field.required_when_field,
        field.required_when_value,
        field.active,
    ) == ("code_1c", "1C code", "text", False, True, True, False, "country", "RU", True)

    # a Russian company without the code is refused at the field
    page.goto("/clients/new/?mode=simple")
    page.select_option("#id_kind", "company")
    page.fill("#id_company_name", "ООО Ромашка")
    page.fill("#id_email", "info@romashka.example")
    page.fill("#id_country", "RU")
    custom = page.locator('[name="custom.code_1c"]')
    expect(custom).to_be_visible()
    expect(page.locator('label[for="id_custom.code_1c"]')).to_have_text("1C code")
    page.click("button[type=submit]:has-text('Save')")
    feedback = page.locator('[class~="field-custom.code_1c"] .invalid-feedback')
    expect(feedback).to_have_text("1C code is required.")
    screenshot(page, "flows_custom_field_required")
    assert Client.objects.count() == 0

    # filled in, it is saved and shown on the profile
    page.locator('[name="custom.code_1c"]').fill("00-000123")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator("h1")).to_contain_text("ООО Ромашка")
    expect(_fact(page, "1C code")).to_have_text("00-000123")
    screenshot(page, "flows_custom_field_profile")
    client = Client.objects.get()
    assert (client.name, client.country, client.custom) == (
        "ООО Ромашка",
        "RU",
        {"code_1c": "00-000123"},
    )


# --- 3. merge -----------------------------------------------------------------------------------


def test_merge_another_company_into_this_one_from_the_profile(
    page, live_server, sign_in, admin_user, screenshot
):
    alpha = client_create(by=admin_user, company_name="Alpha SARL", email="a@alpha.example")
    beta = client_create(by=admin_user, company_name="Beta GmbH", email="b@beta.example")
    contact_add(client=beta, by=admin_user, first_name="Hans", last_name="Müller")
    _signed_in_admin(page, sign_in, admin_user)
    page.goto(f"/clients/{alpha.pk}/")

    _open_actions(page, "action-merge")
    expect(page.locator("main h1")).to_have_text("Merge another client into this one")
    page.fill("#id_other", beta.number)
    page.click("button[type=submit]:has-text('Compare')")

    # both side by side: the one that stays, the one merged away
    sides = page.locator(".merge-compare .card")
    expect(sides).to_have_count(2)
    expect(sides.nth(0).locator(".card-header")).to_have_text("Stays")
    expect(sides.nth(0).locator("dd").first).to_have_text(f"{alpha.number} Alpha SARL")
    expect(sides.nth(1).locator(".card-header")).to_have_text("Is merged and closed")
    expect(sides.nth(1).locator("dd").first).to_have_text(f"{beta.number} Beta GmbH")
    screenshot(page, "flows_merge_compare")
    page.check("#id_confirm")
    page.click("#merge-confirm")

    expect(page).to_have_url(f"{live_server.url}/clients/{alpha.pk}/")
    expect(page.locator(".alert-success")).to_have_text(
        f"Client {beta.number} merged into {alpha.number}."
    )
    expect(page.locator("#contacts .list-group-item .fw-semibold")).to_have_text(
        ["Hans Müller main"]
    )
    page.click("#tab-newsfeed")
    expect(page).to_have_url(f"{live_server.url}/clients/{alpha.pk}/?tab=newsfeed")
    expect(page.locator("#newsfeed .list-group-item").first.locator("div").first).to_have_text(
        f"Client {beta.number} Beta GmbH merged into this account"
    )
    screenshot(page, "flows_merge_newsfeed")

    gone = page.goto(f"/clients/{beta.pk}/")
    assert gone.status == 404
    merged = Client.everything.get(pk=beta.pk)
    assert merged.merged_into_id == alpha.pk
    assert list(Client.objects.values_list("pk", flat=True)) == [alpha.pk]
    assert list(Contact.objects.values_list("client_id", "last_name")) == [(alpha.pk, "Müller")]


# --- 4. delete ----------------------------------------------------------------------------------


def test_delete_asks_for_the_number_and_a_reason_then_lands_on_the_list(
    page, live_server, sign_in, admin_user, screenshot
):
    alpha = client_create(by=admin_user, company_name="Alpha SARL", email="a@alpha.example")
    other = client_create(by=admin_user, company_name="Other SA", email="o@other.example")
    _signed_in_admin(page, sign_in, admin_user)
    page.goto(f"/clients/{alpha.pk}/")

    _open_actions(page, "action-delete")
    expect(page.locator("main h1")).to_have_text(f"Delete {alpha.number} Alpha SARL")
    # another client's number is refused at the field
    page.fill("#id_number", other.number)
    page.fill("#id_reason", "Created twice by mistake")
    page.click("#delete-confirm")
    expect(page.locator(".field-number .invalid-feedback")).to_have_text(
        f"Type {alpha.number} to confirm."
    )
    screenshot(page, "flows_delete_wrong_number")
    assert Client.objects.count() == 2

    page.fill("#id_number", alpha.number)
    page.click("#delete-confirm")
    expect(page).to_have_url(f"{live_server.url}/clients/")
    expect(page.locator(".alert-success")).to_have_text(f"Client {alpha.number} deleted.")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr td").nth(1)).to_have_text("Other SA")
    screenshot(page, "flows_delete_done")
    assert list(Client.objects.values_list("pk", flat=True)) == [other.pk]
    assert Client.everything.get(pk=alpha.pk).deleted_at is not None


# --- 5. documents -------------------------------------------------------------------------------

REFUSED_TYPE = (
    "This file type is not accepted. Attach a PDF, a photo (JPEG, PNG, GIF, WebP), "
    "an office document (DOCX, XLSX, PPTX, ODT, ODS) or a text file (TXT, CSV)."
)


def _attach(page, name: str, mime: str, content: bytes, description: str = "") -> None:
    page.set_input_files("#id_file", {"name": name, "mimeType": mime, "buffer": content})
    page.fill("#id_description", description)
    page.click("#documents button:has-text('Attach')")


def test_documents_tab_attaches_a_photo_shown_as_a_thumbnail_and_a_pdf(
    page, sign_in, admin_user, screenshot, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    alpha = client_create(by=admin_user, company_name="Alpha SARL", email="a@alpha.example")
    _signed_in_admin(page, sign_in, admin_user)
    page.goto(f"/clients/{alpha.pk}/")
    page.click("#tab-documents")
    expect(page.locator("#documents .list-group-item")).to_have_text("No documents yet.")

    _attach(page, "stamp.png", "image/png", _png(), description="Company stamp")
    screenshot(page, "flows_documents_after_png")
    expect(page.locator(".alert-success")).to_have_text("Document attached.")
    _attach(page, "contract.pdf", "application/pdf", MINIMAL_PDF)
    expect(page.locator(".alert-success")).to_have_text("Document attached.")

    listed = page.locator("#documents .document a.fw-semibold")
    expect(listed).to_have_text(["contract.pdf", "stamp.png"])
    expect(page.locator("#tab-documents .badge")).to_have_text("2")
    thumb = page.locator("img.document-thumb")
    expect(thumb).to_have_count(1)
    expect(thumb).to_have_attribute("alt", "stamp.png")
    thumb.evaluate("img => img.decode()")
    assert thumb.evaluate("img => img.naturalWidth") == 16
    screenshot(page, "flows_documents")
    assert sorted(Document.objects.values_list("name", "content_type", "description")) == [
        ("contract.pdf", "application/pdf", ""),
        ("stamp.png", "image/png", "Company stamp"),
    ]


def test_documents_tab_refuses_a_program_renamed_to_png(
    page, sign_in, admin_user, screenshot, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    alpha = client_create(by=admin_user, company_name="Alpha SARL", email="a@alpha.example")
    _signed_in_admin(page, sign_in, admin_user)
    page.goto(f"/clients/{alpha.pk}/?tab=documents")
    expect(page.locator("#tab-documents")).to_have_class("nav-link active")

    _attach(page, "invoice.png", "image/png", EXE_BYTES)
    expect(page.locator(".alert-danger")).to_have_text(REFUSED_TYPE)
    expect(page.locator("#documents .list-group-item")).to_have_text("No documents yet.")
    expect(page.locator("#tab-documents .badge")).to_have_text("0")
    screenshot(page, "flows_documents_refused")
    assert Document.objects.count() == 0


# --- 6. group of companies ----------------------------------------------------------------------


def test_group_of_companies_tab_shows_the_tree_with_the_holding_first(
    page, sign_in, admin_user, screenshot
):
    holding = client_create(by=admin_user, name="Holding AG", email="hq@holding.example")
    first = client_create(
        by=admin_user, name="Member One", email="one@holding.example", parent=holding
    )
    second = client_create(
        by=admin_user, name="Member Two", email="two@holding.example", parent=holding
    )
    _signed_in_admin(page, sign_in, admin_user)
    page.goto(f"/clients/{second.pk}/")
    expect(page.locator("main .text-body-secondary.small").first).to_have_text(
        f"Client {second.number} · Company · member of Holding AG"
    )
    page.click("#tab-group")

    nodes = page.locator("#group .group-node")
    expect(nodes).to_have_count(3)
    expect(nodes).to_have_text(
        [
            f"{holding.number} Holding AG Active",
            f"└ {first.number} Member One Active",
            f"└ {second.number} Member Two Active",
        ]
    )
    expect(nodes.nth(0)).to_have_class("group-node depth-0")
    expect(nodes.nth(2)).to_have_class("group-node depth-1 fw-semibold")
    expect(nodes.nth(0).locator("a")).to_have_attribute("href", f"/clients/{holding.pk}/")
    screenshot(page, "flows_group")
    assert sorted(Client.objects.filter(parent=holding).values_list("name", flat=True)) == [
        "Member One",
        "Member Two",
    ]


# --- 7. advanced search -------------------------------------------------------------------------


def test_advanced_search_with_all_then_any_criterion(page, sign_in, admin_user, screenshot):
    for name, email, country in (
        ("Alpha SARL", "a@alpha.example", "FR"),
        ("Alphabet Inc", "a@alphabet.example", "US"),
        ("Gamma SA", "g@gamma.example", "FR"),
        ("Delta Ltd", "d@delta.example", "GB"),
    ):
        client_create(by=admin_user, company_name=name, email=email, country=country)
    _signed_in_admin(page, sign_in, admin_user)
    page.goto("/clients/")
    expect(page.locator("tbody tr")).to_have_count(4)

    page.click("summary:has-text('Advanced search')")
    page.select_option("#c0_field", label="Name")
    page.select_option("#c0_op", label="matches (% wildcards)")
    page.fill("#c0_value", "Alpha%")
    page.select_option("#c1_field", label="Country")
    page.select_option("#c1_op", label="is")
    page.fill("#c1_value", "FR")
    page.click("#advanced-search button:has-text('Search')")

    names = page.locator("tbody tr td:nth-child(2)")
    expect(names).to_have_text(["Alpha SARL"])
    expect(page.locator("#c0_value")).to_have_value("Alpha%")
    expect(page.locator("#match-all")).to_be_checked()
    screenshot(page, "flows_search_all")

    page.check("#match-any")
    page.click("#advanced-search button:has-text('Search')")
    # newest first: Gamma (FR), Alphabet (Alpha%), Alpha (both)
    expect(names).to_have_text(["Gamma SA", "Alphabet Inc", "Alpha SARL"])
    expect(page.locator("#match-any")).to_be_checked()
    screenshot(page, "flows_search_any")
    assert Client.objects.count() == 4


# --- 8. a large import --------------------------------------------------------------------------


def _import_workbook(path):
    """10,000 companies, 20 of them broken; the expected (row, column) of each problem."""
    from openpyxl import Workbook

    broken = {}
    bad_email = list(range(200, 208))  # 8 rows
    bad_country = list(range(5000, 5006))  # 6 rows
    repeated = {8000 + i: 10 + i for i in range(6)}  # 6 rows repeating an earlier email
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Clients")
    sheet.append(["Company", "Email", "Country", "Phone"])
    for index in range(IMPORT_ROWS):
        row = index + 2  # as a spreadsheet numbers it: row 1 is the header
        email, country = f"client{index:05d}@import.example", "FR"
        if index in bad_email:
            email = f"broken{index}.example"
            broken[row] = "Email"
        elif index in bad_country:
            country = "XQ"
            broken[row] = "Country"
        elif index in repeated:
            email = f"client{repeated[index]:05d}@import.example"
            broken[row] = "Email"
        sheet.append([f"Import Co {index:05d}", email, country, f"+33 6 {index:08d}"])
    book.save(path)
    return broken


def test_import_of_ten_thousand_rows_with_twenty_broken(
    page, live_server, sign_in, admin_user, screenshot, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    workbook = tmp_path / "clients-10k.xlsx"
    broken = _import_workbook(workbook)
    assert len(broken) == 20
    _signed_in_admin(page, sign_in, admin_user)

    # from the list's Import button to the upload page
    page.goto("/clients/")
    page.click("main a.btn:has-text('Import')")
    expect(page.locator("main h1")).to_have_text("Import clients")
    screenshot(page, "flows_import_upload")
    page.set_input_files("#id_file", str(workbook))
    page.click("button[type=submit]:has-text('Upload and map the columns')")

    # the columns are guessed from the headers
    expect(page.locator("main h1")).to_contain_text("Map the columns")
    for index, field in enumerate(("company_name", "email", "country", "phone")):
        expect(page.locator(f"#id_column_{index}")).to_have_value(field)
    screenshot(page, "flows_import_mapping")
    page.click("button[name=action][value=import]", timeout=IMPORT_TIMEOUT_MS)
    page.wait_for_url("**/result/", timeout=IMPORT_TIMEOUT_MS)
    expect(page.locator("[data-count=created]")).to_have_text("9,980", timeout=IMPORT_TIMEOUT_MS)
    expect(page.locator("main h1")).to_contain_text("Import result")
    expect(page.locator("[data-count=failed]")).to_have_text("20")
    expect(page.locator("[data-count=updated]")).to_have_text("0")
    expect(page.locator(".alert-warning")).to_have_text(
        "The good rows were saved; the rows below were left out."
    )
    expect(page.locator("#import-run .card-header > span").first).to_have_text("20 problems")
    expect(page.locator("#import-run tbody tr")).to_have_count(20)
    screenshot(page, "flows_import_result")

    with page.expect_download() as waiting:
        page.click("a:has-text('Error report (CSV)')")
    download = waiting.value
    assert download.suggested_filename == "clients-10k-errors.csv"
    report = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8-sig"))))
    assert report[0] == ["Row", "Column", "Message"]
    assert len(report) == 21
    assert {int(row): column for row, column, _message in report[1:]} == broken
    messages = {int(row): message for row, _column, message in report[1:]}
    assert messages[8002] == "This email is also in row 12 of this file."
    assert all(message for message in messages.values())

    assert Client.objects.count() == IMPORT_ROWS - 20
    assert Client.objects.filter(email="client00010@import.example").count() == 1
    assert not Client.objects.filter(name="Import Co 08000").exists()
