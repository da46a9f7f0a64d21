"""`clientbase up`: a task worker and the web server together, for one machine."""

import os
import signal
import subprocess
import sys

from django.core.management.base import BaseCommand

from clientbase.core.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Start a task worker beside the web server; Ctrl+C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"))

    def handle(self, *args, bind, **options):
        command = [sys.executable, "-m", "clientbase.cli"]
        worker = subprocess.Popen([*command, "worker"])
        self.stdout.write(self.style.SUCCESS(f"Clientbase on http://{bind}/"))
        self.stdout.write(f"Sign in as admin / {DEMO_PASSWORD} (demo administrator)")
        try:
            subprocess.run([*command, "serve", "--bind", bind], check=False)
        except KeyboardInterrupt:
            pass
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=10)
