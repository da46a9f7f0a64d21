"""Typst compiling, apart from Django, so worker processes can import it alone."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typst

TEMPLATE = Path(__file__).resolve().parent / "templates" / "billing" / "invoice.typ"

_local = threading.local()


def _compiler() -> typst.Compiler:
    """This thread's compiler: the template and the fonts are loaded once per thread."""
    compiler = getattr(_local, "compiler", None)
    if compiler is None:
        compiler = _local.compiler = typst.Compiler(
            TEMPLATE, root=TEMPLATE.parent, ignore_system_fonts=True
        )
    return compiler


def warm_up() -> None:
    """Load the template and fonts before the first job arrives."""
    _compiler()


def render(document: dict, *, timestamp: int | None = None) -> bytes:
    """The PDF of a document as invoice_document() makes it; `timestamp` (Unix seconds)
    dates the PDF."""
    return _compiler().compile(
        format="pdf",
        sys_inputs={"data": json.dumps(document, ensure_ascii=False)},
        timestamp=timestamp,
        # Accessibility tags cost a fifth of the render time.
        pdf_tags=False,
    )


def render_job(job: tuple[dict, int | None]) -> bytes:
    """render() for a (document, timestamp) pair, as a process pool hands it over."""
    document, timestamp = job
    return render(document, timestamp=timestamp)
