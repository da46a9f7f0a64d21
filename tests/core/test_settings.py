"""Settings come from the environment; production settings pass Django's deploy check."""

import json
import os
import secrets
import subprocess
import sys


def _run(tmp_path, code: str, **env_vars) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CLIENTBASE_VAR_DIR=str(tmp_path), CLIENTBASE_TESTING="false", **env_vars)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s;"
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'],"
    " 'db': str(s.DATABASES['default']['NAME']), 'tasks': s.TASKS['default']['BACKEND'],"
    " 'cache': s.CACHES['default']['BACKEND'], 'tz': s.TIME_ZONE,"
    " 'currency': s.DEFAULT_CURRENCY, 'email': s.EMAIL_BACKEND, 'hosts': s.ALLOWED_HOSTS,"
    " 'ssl': s.SECURE_SSL_REDIRECT, 'key': s.SECRET_KEY, 'hasher': s.PASSWORD_HASHERS[0]}))"
)


def _settings(tmp_path, **env_vars) -> dict:
    done = _run(tmp_path, SHOW, DJANGO_SETTINGS_MODULE="clientbase.settings", **env_vars)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_embedded_defaults(tmp_path):
    shown = _settings(tmp_path)
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["db"] == str(tmp_path / "clientbase.sqlite3")
    assert shown["tasks"] == "django_tasks_db.DatabaseBackend"
    assert shown["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert shown["ssl"] is True
    assert shown["hasher"] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    # the generated secret key is kept in var/ and reused
    assert (tmp_path / "secret_key").read_text().strip() == shown["key"]
    assert _settings(tmp_path)["key"] == shown["key"]


def test_scale_out_settings_from_the_environment(tmp_path):
    shown = _settings(
        tmp_path,
        DATABASE_URL="postgres://app:pw@db.internal:5432/crm",
        REDIS_URL="redis://cache.internal:6379/0",
        TIME_ZONE="Europe/Paris",
        DEFAULT_CURRENCY="RUB",
        EMAIL_URL="smtp+tls://mailer:pw@smtp.example.com:587",
        ALLOWED_HOSTS="crm.example.com,crm2.example.com",
        SECRET_KEY="k" * 60,
    )
    assert shown["engine"] == "django.db.backends.postgresql"
    assert shown["db"] == "crm"
    assert shown["tasks"] == "django_tasks_rq.RQBackend"
    assert shown["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert (shown["tz"], shown["currency"]) == ("Europe/Paris", "RUB")
    assert shown["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert shown["hosts"] == ["crm.example.com", "crm2.example.com"]
    assert shown["key"] == "k" * 60


def test_production_settings_pass_the_deploy_check(tmp_path):
    done = _run(
        tmp_path,
        "from clientbase.cli import main; import sys;"
        "sys.argv = ['clientbase', 'check', '--deploy', '--fail-level', 'WARNING']; main()",
        DEBUG="false",
        HTTPS_ONLY="true",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="crm.example.com",
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
