from django.db import migrations

# Billing actions, given to the default roles that would have had them, had they existed
# when the roles were created.
BILLING = ["billing.sell", "billing.invoice", "billing.payment", "billing.refund"]
GRANTS = {
    "administrator": BILLING,
    "director": BILLING,
    "billing": BILLING,
    "manager": ["billing.sell"],
    "sales": ["billing.sell"],
}


def grant(apps, schema_editor):
    role_model = apps.get_model("accounts", "Role")
    for slug, codes in GRANTS.items():
        for role in role_model.objects.filter(slug=slug):
            role.permissions = sorted(set(role.permissions) | set(codes))
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_catalog_permissions")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
