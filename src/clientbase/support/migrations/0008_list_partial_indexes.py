"""Partial indexes for the ticket list's narrow filters and its counters (SUP-1)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("support", "0007_ticket_subject_fts")]

    operations = [
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("merged_into__isnull", True), ("status__in", ["open", "customer_reply"])
                ),
                fields=["-id", "client", "owner", "department", "priority"],
                name="ticket_awaiting_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("merged_into__isnull", True), ("status__in", ["open", "customer_reply"])
                ),
                fields=["department", "-id", "client", "owner"],
                name="ticket_awaiting_dept_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(("due_at__isnull", False), ("merged_into__isnull", True)),
                fields=["-id", "due_at", "client", "owner"],
                name="ticket_overdue_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("is_complaint", True),
                    ("merged_into__isnull", True),
                    (
                        "status__in",
                        ["open", "answered", "customer_reply", "on_hold", "in_progress"],
                    ),
                ),
                fields=["-id"],
                name="ticket_complaint_open_idx",
            ),
        ),
    ]
