"""Give the default roles of an existing installation the sales actions they start with."""

from django.db import migrations


def add_sales_permissions(apps, schema_editor):
    from clientbase.accounts.roles import DEFAULT_ROLES, permissions_for

    Role = apps.get_model("accounts", "Role")
    for spec in DEFAULT_ROLES:
        wanted = [p for p in permissions_for(spec) if p.startswith(("sales.", "marketing."))]
        role = Role.objects.filter(slug=spec["slug"]).first()
        if role is None or not wanted:
            continue
        missing = [p for p in wanted if p not in role.permissions]
        if missing:
            role.permissions = sorted([*role.permissions, *missing])
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("sales", "0001_initial"), ("accounts", "0002_default_roles")]

    operations = [migrations.RunPython(add_sales_permissions, migrations.RunPython.noop)]
