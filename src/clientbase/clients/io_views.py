"""Client import (upload, mapping, dry run, result, error report) and export pages.

An upload is kept, with what inspecting it found and its last run, in a folder of its own
under MEDIA_ROOT/imports/<user id>/<random token>/ until the same user's next upload a day
later sweeps it; nobody else can name it, as the user's id is part of the path. Dry runs
and imports run as a background task (`clientbase worker`), so a large file outlasts no
request timeout; the result page polls until the result is there.
Column mappings are saved in the database under the name of where such files come from,
shared by all staff; a file whose headers match a saved mapping gets it preselected.
"""

import datetime as dt
import json
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import path, re_path
from django.utils import translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_tasks import task

from clientbase.accounts.models import User
from clientbase.clients import io, queries
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import StyledForm, add_service_errors
from clientbase.core.permissions import require_action

JOB_TTL = dt.timedelta(days=1)
ERRORS_SHOWN = 100
# A run queued this long ago without a result probably waits for a worker that is not there.
WORKER_HINT_AFTER = dt.timedelta(minutes=2)
# A run that long without a result is taken for lost: the file may be run again.
RUN_FORGOTTEN_AFTER = dt.timedelta(hours=2)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


# --- where uploads wait ------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """An uploaded file waiting for its mapping, and its last run."""

    token: str
    folder: Path
    name: str
    sheet: io.Sheet

    @property
    def upload(self) -> Path:
        """The uploaded file as it came."""
        return self.folder / "upload"

    def _read(self, name: str) -> dict | None:
        try:
            return json.loads((self.folder / name).read_text())
        except (OSError, ValueError):
            return None

    def _write(self, name: str, data: dict) -> None:
        # Write beside, then rename: the page polling for it never reads half a file.
        part = self.folder / f"{name}.part"
        part.write_text(json.dumps(data))
        part.replace(self.folder / name)

    def run(self) -> dict | None:
        """The last run asked for: its id, mapping, mode, when, and whether it crashed."""
        return self._read("run.json")

    def start_run(self, *, mapping: list[str], dry_run: bool, all_or_nothing: bool) -> str:
        """Note a new run (its result replaces the last one's); its id."""
        run_id = secrets.token_hex(8)
        self._write(
            "run.json",
            {
                "run_id": run_id,
                "mapping": mapping,
                "dry_run": dry_run,
                "all_or_nothing": all_or_nothing,
                "queued_at": clock.now().isoformat(),
                "crashed": False,
            },
        )
        return run_id

    def result(self) -> dict | None:
        """The last run's result, if it is there (with the run's mapping and mode)."""
        run, result = self.run(), self._read("result.json")
        if run is None or result is None or result.get("run_id") != run["run_id"]:
            return None
        return result | {"mapping": run["mapping"]}

    def keep_result(self, run_id: str, result: io.ImportResult) -> None:
        """Keep a run's result for the result page and the error report."""
        self._write("result.json", result.as_dict() | {"run_id": run_id})

    def pending(self) -> dict | None:
        """The last run, while it has neither a result nor crashed (and is not forgotten)."""
        run = self.run()
        if run is None or run["crashed"] or self.result() is not None:
            return None
        if clock.now() - dt.datetime.fromisoformat(run["queued_at"]) > RUN_FORGOTTEN_AFTER:
            return None
        return run

    def crashed(self, run_id: str) -> None:
        """Note that a run stopped on an unexpected error, so the page stops waiting."""
        run = self.run()
        if run is not None and run["run_id"] == run_id:
            self._write("run.json", run | {"crashed": True})


def _user_folder(user) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(user.pk)


def sweep_uploads(folder: Path | None = None) -> int:
    """Delete uploads made more than a day ago (everyone's, or under one folder); the count.

    Each new upload sweeps its user's own; a daily job may call this for everyone's.
    """
    root = folder or Path(settings.MEDIA_ROOT) / "imports"
    limit = clock.now().timestamp() - JOB_TTL.total_seconds()
    gone = 0
    for meta in list(root.glob("**/job.json")):
        if meta.stat().st_mtime < limit:
            shutil.rmtree(meta.parent, ignore_errors=True)
            gone += 1
    return gone


def _job_create(user, upload, sheet: io.Sheet) -> Job:
    """Keep an upload for the next steps; the user's uploads older than a day go."""
    folder = _user_folder(user)
    folder.mkdir(parents=True, exist_ok=True)
    sweep_uploads(folder)
    token = secrets.token_urlsafe(24)
    job = Job(
        token=token, folder=folder / token, name=Path(upload.name or "").name[:200], sheet=sheet
    )
    job.folder.mkdir(mode=0o700)
    with job.upload.open("wb") as kept:
        for chunk in upload.chunks():
            kept.write(chunk)
    meta = {"name": job.name, "sheet": sheet.as_dict(), "uploaded_at": clock.now().isoformat()}
    (job.folder / "job.json").write_text(json.dumps(meta))
    return job


def _job(user, token: str) -> Job:
    """The user's own upload by its token, or 404."""
    if not _TOKEN.match(token):
        raise Http404
    folder = _user_folder(user) / token
    try:
        meta = json.loads((folder / "job.json").read_text())
    except (OSError, ValueError):
        raise Http404 from None
    return Job(
        token=token, folder=folder, name=meta["name"], sheet=io.Sheet.from_dict(meta["sheet"])
    )


# --- forms -------------------------------------------------------------------------------------


class UploadForm(StyledForm, forms.Form):
    """A file of clients to import."""

    file = forms.FileField(
        label=gettext_lazy("File"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx"}),
    )


class MappingForm(StyledForm, forms.Form):
    """Which client field each column of the file fills, and how to run the import."""

    source = forms.CharField(
        label=gettext_lazy("Save this mapping as"),
        required=False,
        max_length=100,
        help_text=gettext_lazy(
            "A name for where such files come from (e.g. “1C export”): everyone who imports "
            "can then reuse the mapping."
        ),
    )
    all_or_nothing = forms.BooleanField(
        label=gettext_lazy("All or nothing: save no row if any row fails"), required=False
    )

    def __init__(self, *args, sheet: io.Sheet, mapping: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.sheet = sheet
        choices = [("", gettext_lazy("— leave out —")), *io.FIELDS.items()]
        self.columns = []
        for index, (label, initial) in enumerate(zip(sheet.labels, mapping, strict=True)):
            name = f"column_{index}"
            self.fields[name] = forms.ChoiceField(
                label=label, choices=choices, required=False, initial=initial
            )
            self.fields[name].widget.attrs["class"] = "form-select form-select-sm"
            self.columns.append(name)

    def column_fields(self):
        """The column selects, in the file's order."""
        return [self[name] for name in self.columns]

    def clean(self):
        cleaned = super().clean()
        mapping = [cleaned.get(name, "") or "" for name in self.columns]
        try:
            cleaned["mapping"] = io.check_mapping(self.sheet, mapping)
        except ServiceError as refused:
            raise forms.ValidationError(refused.messages) from None
        return cleaned


# --- views -------------------------------------------------------------------------------------


def _may_import(request: HttpRequest) -> None:
    if not (request.user.has_perm("clients.add") and request.user.has_perm("clients.change")):
        raise PermissionDenied


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    """Upload a CSV, TXT or XLSX file of clients."""
    _may_import(request)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            sheet = io.inspect_upload(upload)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            job = _job_create(request.user, upload, sheet)
            return redirect("clients:import_mapping", token=job.token)
    return render(
        request,
        "clients/import_upload.html",
        {
            "form": form,
            "max_size": filesizeformat(io.MAX_FILE_BYTES),
            "max_rows": io.MAX_ROWS,
            "fields": io.FIELDS.values(),
        },
    )


@login_required
def import_mapping(request: HttpRequest, token: str) -> HttpResponse:
    """Map the file's columns to client fields, then dry-run or import."""
    _may_import(request)
    job = _job(request.user, token)
    saved = {mapping.source: mapping for mapping in io.saved_mappings()}
    source = request.GET.get("source", "")
    if source not in saved:
        matching = io.matching_mapping(job.sheet, saved.values())
        source = matching.source if matching is not None else ""
    last = job.run()
    if request.GET.get("again") and last and len(last["mapping"]) == len(job.sheet.headers):
        mapping = last["mapping"]
    else:
        mapping = io.guess_mapping(
            job.sheet.headers, saved[source].columns if source in saved else None
        )
    form = MappingForm(
        request.POST or None,
        sheet=job.sheet,
        mapping=mapping,
        initial={"source": source, "all_or_nothing": bool(last and last["all_or_nothing"])},
    )
    if request.method == "POST" and job.pending():
        # A second click, or a second tab: one run of a file at a time.
        messages.info(request, _("This file is being imported; here is where its result appears."))
        return redirect("clients:import_result", token=job.token)
    if request.method == "POST" and form.is_valid():
        mapping = form.cleaned_data["mapping"]
        dry_run = request.POST.get("action") != "import"
        all_or_nothing = form.cleaned_data["all_or_nothing"]
        if name := form.cleaned_data["source"].strip():
            io.mapping_save(source=name, sheet=job.sheet, mapping=mapping, by=request.user)
        run_id = job.start_run(mapping=mapping, dry_run=dry_run, all_or_nothing=all_or_nothing)
        arguments = {
            "user_id": request.user.pk,
            "token": job.token,
            "run_id": run_id,
            "language": translation.get_language(),
        }
        transaction.on_commit(lambda: run_import.enqueue(**arguments))
        return redirect("clients:import_result", token=job.token)
    with job.upload.open("rb") as upload:
        try:
            rows = io.preview(upload, job.sheet)
        except ServiceError as refused:
            rows = []
            form.add_error(None, refused.messages[0])
    return render(
        request,
        "clients/import_mapping.html",
        {
            "job": job,
            "form": form,
            "columns": [
                {"field": bound, "samples": [row[index] for row in rows]}
                for index, bound in enumerate(form.column_fields())
            ],
            "rows": rows,
            "headers": job.sheet.labels,
            "saved": list(saved.values()),
            "source": source,
        },
    )


@login_required
def import_result(request: HttpRequest, token: str) -> HttpResponse:
    """What the last run of an upload did, with its first errors and the report to download."""
    _may_import(request)
    job = _job(request.user, token)
    run, result = job.run(), job.result()
    if run is None:
        return redirect("clients:import_mapping", token=token)
    context = {"job": job, "run": run, "result": result}
    if result is None:
        waited = clock.now() - dt.datetime.fromisoformat(run["queued_at"])
        context["worker_hint"] = not run["crashed"] and waited > WORKER_HINT_AFTER
    else:
        context |= {
            "errors": [io.RowError(*e) for e in result["errors"][:ERRORS_SHOWN]],
            "errors_shown": min(ERRORS_SHOWN, len(result["errors"])),
            "errors_listed": len(result["errors"]),
        }
    return render(request, "clients/import_result.html", context)


@task()
def run_import(*, user_id: int, token: str, run_id: str, language: str) -> str:
    """Dry-run or import an uploaded file as its run asks; the result lands beside the file."""
    user = User.objects.select_related("role", "org_unit").get(pk=user_id)
    job = _job(user, token)
    run = job.run()
    if run is None or run["run_id"] != run_id:
        return "superseded"
    try:
        with translation.override(language), job.upload.open("rb") as upload:
            result = io.import_clients(
                upload,
                job.sheet,
                run["mapping"],
                by=user,
                dry_run=run["dry_run"],
                all_or_nothing=run["all_or_nothing"],
            )
    except Exception:
        job.crashed(run_id)
        raise
    job.keep_result(run_id, result)
    return f"{result.created} created, {result.updated} updated, {result.failed} failed"


@login_required
def import_errors(request: HttpRequest, token: str, fmt: str) -> HttpResponse:
    """The last run's error report, as CSV or XLSX."""
    _may_import(request)
    job = _job(request.user, token)
    result = job.result()
    if result is None:
        raise Http404
    rows = io.error_rows(io.RowError(*e) for e in result["errors"])
    stem = Path(job.name).stem or "import"
    return _download(rows, fmt, filename=f"{stem}-errors", title=_("Errors"))


@require_action("clients.export")
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The client list, or a search of it, as CSV or XLSX: only clients the user may see."""
    found = queries.client_search(request.user, request.GET.get("q", ""))
    # The list page's filters, so the export is exactly the list on screen.
    if request.GET.get("mine") == "1":
        found = found.filter(owner=request.user)
    if request.GET.get("unmanaged") == "1":
        found = found.filter(owner__isnull=True)
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    rows = io.export_rows(found, dates_as_text=fmt == "csv")
    return _download(rows, fmt, filename=f"clients-{stamp}", title=_("Clients"))


def _download(rows, fmt: str, *, filename: str, title: str) -> HttpResponse:
    """Rows streamed as CSV or XLSX, written as they are sent: a million rows wait for nothing."""
    if fmt == "csv":
        response = StreamingHttpResponse(
            io.csv_chunks(rows), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(
            io.xlsx_chunks(rows, title=title), content_type=io.XLSX_CONTENT_TYPE
        )
    # The name may come from the uploaded file: quoted and encoded as the RFC says.
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"{filename}.{fmt}"
    )
    return response


urlpatterns = [
    path("import/", import_upload, name="import"),
    path("import/<str:token>/", import_mapping, name="import_mapping"),
    path("import/<str:token>/result/", import_result, name="import_result"),
    re_path(
        r"^import/(?P<token>[A-Za-z0-9_-]+)/errors\.(?P<fmt>csv|xlsx)$",
        import_errors,
        name="import_errors",
    ),
    re_path(r"^export\.(?P<fmt>csv|xlsx)$", export, name="export"),
]
