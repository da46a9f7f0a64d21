"""Received mail is stored as it came, without PostgreSQL trying to compress it (SUP-2).

Most of a message's bytes are base64 attachments, which PostgreSQL's default compression
cannot shrink: it tried on every insert and kept the bytes as they were. EXTERNAL storage
skips the attempt.
"""

from django.db import migrations


def _storage(kind: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE support_inboundmail ALTER COLUMN raw SET STORAGE {kind}")

    return run


class Migration(migrations.Migration):
    dependencies = [("support", "0008_list_partial_indexes")]

    operations = [migrations.RunPython(_storage("EXTERNAL"), _storage("EXTENDED"), elidable=False)]
