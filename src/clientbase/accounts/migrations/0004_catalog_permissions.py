from django.db import migrations

# The catalogue's action, given to the default roles that edit prices.
GRANTS = {
    "administrator": ["catalog.manage"],
    "director": ["catalog.manage"],
    "billing": ["catalog.manage"],
}


def grant(apps, schema_editor):
    role_model = apps.get_model("accounts", "Role")
    for slug, codes in GRANTS.items():
        for role in role_model.objects.filter(slug=slug):
            role.permissions = sorted(set(role.permissions) | set(codes))
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_client_file_actions")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
