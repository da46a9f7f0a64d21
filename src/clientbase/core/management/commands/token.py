"""`clientbase token create --user NAME`: make a personal API token and print it once."""

from django.core.management.base import BaseCommand, CommandError

from clientbase.accounts.models import ApiToken, User
from clientbase.accounts.services import token_create, token_revoke


class Command(BaseCommand):
    help = "Create, list or revoke personal API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a token; the secret is printed once")
        create.add_argument("--user", required=True)
        create.add_argument("--name", default="Command line")
        listing = sub.add_parser("list", help="a user's tokens")
        listing.add_argument("--user", required=True)
        revoke = sub.add_parser("revoke", help="stop a token from working")
        revoke.add_argument("--user", required=True)
        revoke.add_argument("prefix", help="the first characters of the token")

    def handle(self, *args, action, user, **options):
        owner = User.objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user named {user!r}")
        if action == "create":
            issued = token_create(user=owner, name=options["name"], by=None)
            self.stdout.write(issued.secret)
        elif action == "list":
            for token in owner.api_tokens.all():
                state = "revoked" if token.revoked_at else "active"
                self.stdout.write(f"{token.prefix}…\t{token.name}\t{state}")
        else:
            token = ApiToken.objects.filter(user=owner, prefix__startswith=options["prefix"][:10])
            found = token.filter(revoked_at__isnull=True).first()
            if found is None:
                raise CommandError("No active token of this user starts like that")
            token_revoke(token=found, by=owner)
            self.stdout.write(f"revoked {found.prefix}…")
