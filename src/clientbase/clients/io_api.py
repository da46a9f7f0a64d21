"""Client import over the API: the same reading, mapping and services as the import page."""

import json

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, File, Form, Router, Schema
from ninja.files import UploadedFile

from clientbase.clients import io
from clientbase.core.api_base import problems
from clientbase.core.errors import ServiceError


class RowErrorOut(Schema):
    """One problem of the file: its row (1 = the first row of the file), column and message."""

    row: int = Field(description="Row number as a spreadsheet shows it; 0 for the whole file.")
    column: str = Field(description="The column's header in the file; empty for the whole row.")
    message: str


class ImportOut(Schema):
    """What the import did, or with `dry_run` what it would do."""

    dry_run: bool
    all_or_nothing: bool
    saved: bool = Field(
        description="Whether rows were written (false for a dry run or a rollback)."
    )
    rows: int = Field(description="Data rows read (empty rows are skipped).")
    created: int
    updated: int
    unchanged: int
    failed: int
    errors_total: int
    errors: list[RowErrorOut] = Field(
        description=f"The problems, at most {io.MAX_REPORTED_ERRORS:,} of errors_total."
    )


def _mapping(sheet: io.Sheet, text: str, source: str) -> list[str]:
    """The mapping sent as JSON ({"header": "field" or ""}) over the saved one named `source`.

    Columns neither names are guessed from their headers.
    """
    saved = io.saved_mapping(source).columns if source.strip() else {}
    if not text.strip():
        return io.check_mapping(sheet, io.guess_mapping(sheet.headers, saved))
    try:
        named = json.loads(text)
    except ValueError:
        raise ServiceError(
            'The mapping must be a JSON object, e.g. {"E-mail": "email", "Notes": ""}.',
            field="mapping",
        ) from None
    if not isinstance(named, dict) or not all(
        isinstance(k, str) and isinstance(v, str | None) for k, v in named.items()
    ):
        raise ServiceError(
            "The mapping must be a JSON object of column headers to field names.",
            field="mapping",
        )
    named = {header: name or "" for header, name in named.items()}
    # The JSON wins over the saved mapping; of the saved one, only headers this file has count.
    chosen = set(named.values()) - {""}
    kept = {
        header: name
        for header, name in saved.items()
        if header in sheet.headers and header not in named and name not in chosen
    }
    return io.mapping_from_headers(sheet, kept | named)


DESCRIPTION = (
    "Create or update clients from a CSV, TXT or XLSX file sent as multipart `file` "
    f"(at most {io.MAX_FILE_BYTES // (1024 * 1024)} MB and {io.MAX_ROWS:,} rows; the first row "
    "names the columns). A row updates the client you may see with its client number, else "
    "the one with its email (in any case); other rows create clients, owned by you unless an "
    "`owner` column names someone within your reach. Only changed fields are written and "
    "empty cells change nothing, so importing a file twice changes nothing the second time.\n\n"
    '`mapping` is a JSON object from column header to field, or "" to leave a column out; '
    "columns it does not name are guessed from their headers (English, Russian, French, "
    "Vietnamese). `mapping_source` names a mapping saved on the import page (e.g. "
    '"1C export"), to start from instead of the guess. Fields: '
    + ", ".join(f"`{name}`" for name in io.FIELDS)
    + ".\n\n"
    "A failed row is reported (row, column, message) and skipped; with `all_or_nothing` one "
    "failed row saves nothing. `dry_run` checks every row and saves nothing. A file refused as "
    "a whole (format, size, zip or XML bomb) is a 422 problem at the field `file`."
)


def build_router() -> Router:
    """A router with the import operations (a new one each call: a router mounts only once)."""
    router = Router()

    @router.post(
        "/clients",
        response={200: ImportOut, **problems(400, 403, 422)},
        summary="Import clients from a file",
        description=DESCRIPTION,
    )
    def import_clients(
        request: HttpRequest,
        file: File[UploadedFile],
        mapping: Form[str] = "",
        mapping_source: Form[str] = "",
        dry_run: Form[bool] = False,
        all_or_nothing: Form[bool] = False,
    ):
        """Create or update clients from a CSV, TXT or XLSX file (see DESCRIPTION)."""
        user = request.user
        if not (user.has_perm("clients.add") and user.has_perm("clients.change")):
            raise PermissionDenied
        sheet = io.inspect_upload(file)
        columns = _mapping(sheet, mapping, mapping_source)
        result = io.import_clients(
            file, sheet, columns, by=user, dry_run=dry_run, all_or_nothing=all_or_nothing
        )
        return {
            "dry_run": result.dry_run,
            "all_or_nothing": result.all_or_nothing,
            "saved": result.saved,
            "rows": result.rows,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "failed": result.failed,
            "errors_total": result.errors_total,
            "errors": [
                {"row": e.row, "column": e.column, "message": e.message} for e in result.errors
            ],
        }

    return router


router = build_router()
