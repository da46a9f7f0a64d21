"""Polling the departments' IMAP mailboxes (SUP-2): new messages go to `mail_ingest_batch`.

A message is marked seen only after the transaction that filed it commits, and filing is
idempotent, so a poll cut off at any point and run again files every message exactly once.
"""

import imaplib
import logging
from dataclasses import dataclass

from clientbase.support import intake
from clientbase.support.models import Department

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 30
BATCH = 200  # messages per poll of one mailbox, so one huge backlog cannot stall the rest
CHUNK_BYTES = 64 * 2**20  # filed together at most, so a run of huge messages fits in memory


@dataclass(frozen=True)
class PollResult:
    """What one poll of one mailbox did."""

    department: str
    fetched: int
    tickets: int
    replies: int
    duplicates: int
    ignored: int
    error: str = ""
    failed: int = 0  # messages that raised while filed; left unseen for the next poll


def _connect(department: Department) -> imaplib.IMAP4:
    if department.imap_ssl:
        return imaplib.IMAP4_SSL(
            department.imap_host, department.imap_port, timeout=TIMEOUT_SECONDS
        )
    return imaplib.IMAP4(department.imap_host, department.imap_port, timeout=TIMEOUT_SECONDS)


def _quoted(folder: str) -> str:
    # imaplib sends a folder name as it is given: one with a space needs IMAP quoting.
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reason(failure: Exception) -> str:
    """An error as a person reads it: imaplib hands the server's answer over as bytes."""
    parts = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in failure.args]
    return (" ".join(parts) or type(failure).__name__)[:300]


def poll_mailbox(department: Department) -> PollResult:
    """Fetch the unseen messages of one department's mailbox and file them in batches."""
    counts = {"ticket": 0, "reply": 0, "duplicate": 0, "ignored": 0}
    fetched = failed = 0
    try:
        with _connect(department) as imap:
            imap.login(department.imap_user, department.imap_password)
            status, _ = imap.select(_quoted(department.imap_folder or "INBOX"))
            if status != "OK":
                raise imaplib.IMAP4.error(f"no folder {department.imap_folder}")
            status, data = imap.uid("search", None, "UNSEEN")
            uids = data[0].split()[:BATCH] if status == "OK" and data and data[0] else []
            chunk: list[tuple[bytes, bytes]] = []
            for index, uid in enumerate(uids):
                status, parts = imap.uid("fetch", uid, "(BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
                if status == "OK" and raw is not None:
                    fetched += 1
                    chunk.append((uid, raw))
                last = index == len(uids) - 1
                size = sum(len(r) for _u, r in chunk)
                if chunk and (last or len(chunk) >= intake.BATCH or size >= CHUNK_BYTES):
                    failed += _file(imap, department, chunk, counts)
                    chunk = []
    except (OSError, imaplib.IMAP4.error) as failure:
        log.warning("polling %s failed: %s", department.name, _reason(failure))
        return PollResult(
            department.name, fetched, *counts.values(), error=_reason(failure), failed=failed
        )
    return PollResult(department.name, fetched, *counts.values(), failed=failed)


def _file(imap, department: Department, chunk: list[tuple[bytes, bytes]], counts) -> int:
    """File fetched messages in one batch, then mark those filed seen; the failed count."""
    results = intake.mail_ingest_batch(
        [raw for _uid, raw in chunk], via="imap", department=department, parallel=True
    )
    filed = []
    failed = 0
    for (uid, _raw), result in zip(chunk, results, strict=True):
        if result.outcome == "failed":
            # One message that cannot be filed must not hold up the ones behind it; it
            # stays unseen, so the next poll tries it again.
            log.error(
                "filing message %s of %s failed",
                uid.decode(),
                department.name,
                exc_info=result.error,
            )
            failed += 1
            continue
        counts[result.outcome] += 1
        filed.append(uid)
    if filed:
        imap.uid("store", b",".join(filed), "+FLAGS", "(\\Seen)")
    return failed


def poll_all() -> str:
    """Poll every department with a mailbox; one failing does not stop the others."""
    results = [poll_mailbox(d) for d in Department.objects.filter(imap_enabled=True, active=True)]
    if not results:
        return "no mailbox to poll"
    return "; ".join(
        f"{r.department}: {r.error}"
        if r.error
        else f"{r.department}: {r.fetched} fetched, {r.tickets} new tickets, {r.replies} replies, "
        f"{r.duplicates} seen before, {r.ignored} ignored"
        + (f", {r.failed} failed" if r.failed else "")
        for r in results
    )
