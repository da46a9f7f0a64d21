"""Sign-in, session security, second step, throttling and password reset."""

import re

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client as HttpClient
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from clientbase.accounts import services
from clientbase.accounts.models import Role
from clientbase.core.models import Event
from tests.conftest import PASSWORD


def _totp_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def _with_totp(user) -> TOTPDevice:
    device = services.totp_device_start(user=user)
    services.totp_device_confirm(user=user, device=device, code=_totp_code(device))
    device.refresh_from_db()
    return device


def test_sign_in_rotates_the_session_id_and_sign_out_drops_it(client, make_user):
    # given a visitor with a session
    make_user("ann")
    client.get("/accounts/login/")
    client.session.save()
    before = client.session.session_key
    # when they sign in
    response = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    # then the session id is a new one
    assert response.status_code == 302
    assert response["Location"] == "/"
    after = client.session.session_key
    assert after != before
    # and signing out ends it
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302
    assert client.session.session_key != after


def test_wrong_password_keeps_the_visitor_out(client, make_user):
    make_user("ann")
    response = client.post("/accounts/login/", {"username": "ann", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"Please enter a correct username and password" in response.content


def test_a_post_without_csrf_token_is_refused(make_user):
    make_user("ann")
    strict = HttpClient(enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in strict.session


def test_second_step_with_totp_code(client, make_user, time_machine):
    # given a user with an authenticator app set up a minute ago
    time_machine.move_to("2026-05-01 09:00:00+00:00", tick=False)
    user = make_user("ann")
    device = _with_totp(user)
    time_machine.move_to("2026-05-01 09:01:00+00:00", tick=False)
    # when they sign in with the password only
    client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    # then every page sends them to the second step
    response = client.get("/clients/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/verify/?next=/clients/"
    # a wrong code is refused
    response = client.post("/accounts/two-factor/verify/", {"code": "000000"})
    assert response.status_code == 200
    assert b"That code is not right" in response.content
    assert client.get("/").status_code == 302
    # and the right code, past the pause a wrong one causes, lets them in
    time_machine.move_to("2026-05-01 09:02:00+00:00", tick=False)
    device.refresh_from_db()
    response = client.post(
        "/accounts/two-factor/verify/", {"code": _totp_code(device), "next": "/clients/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/clients/"
    assert client.get("/").status_code == 200


def test_recovery_code_works_once(client, make_user):
    user = make_user("ann")
    _with_totp(user)
    code = StaticToken.objects.filter(device__user=user).first().token
    assert StaticToken.objects.filter(device__user=user).count() == 10
    client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    response = client.post("/accounts/two-factor/verify/", {"code": code})
    assert response.status_code == 302
    assert StaticToken.objects.filter(device__user=user).count() == 9
    assert not StaticToken.objects.filter(device__user=user, token=code).exists()


def test_second_step_by_email_code(client, make_user):
    # given a user who turned on codes by email
    user = make_user("ann")
    services.email_device_start(user=user)
    first_code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    services.email_device_confirm(user=user, code=first_code)
    client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    # when they ask for a code
    client.post("/accounts/two-factor/verify/", {"send_email": "1"})
    assert mail.outbox[-1].to == ["ann@example.com"]
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    # then the emailed code signs them in
    response = client.post("/accounts/two-factor/verify/", {"code": code})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    enabled = Event.objects.get(type="user.two_factor_enabled", subject_id=str(user.pk))
    assert enabled.details == {"username": "ann", "method": "email"}
    assert enabled.message == "Two-step login (code by email) turned on for ann"


def test_role_requiring_two_factor_forces_enrolment(client, make_user):
    # given the billing role requires a second step
    Role.objects.filter(slug="billing").update(require_two_factor=True)
    make_user("bill", role="billing")
    client.post("/accounts/login/", {"username": "bill", "password": PASSWORD})
    # then the user must set one up before anything else
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/setup/"
    page = client.get("/accounts/two-factor/setup/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user__username="bill", confirmed=False)
    response = client.post("/accounts/two-factor/setup/", {"code": _totp_code(device)})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/recovery-codes/"
    assert client.get("/").status_code == 200


def test_api_session_of_unverified_user_gets_401_problem(client, make_user):
    user = make_user("ann")
    _with_totp(user)
    client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_password_reset_does_not_bypass_second_step(client, make_user):
    # given a user with an authenticator app
    user = make_user("ann")
    _with_totp(user)
    # when they reset their password by email
    client.post("/accounts/password-reset/", {"email": "ann@example.com"})
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mail.outbox[-1].body)
    response = client.get(link.group(1), follow=True)
    form_url = response.redirect_chain[-1][0]
    response = client.post(
        form_url, {"new_password1": "a-new-long-pass-42", "new_password2": "a-new-long-pass-42"}
    )
    assert response.status_code == 302
    # then they are not signed in, and the new password still leads to the second step
    assert "_auth_user_id" not in client.session
    client.post("/accounts/login/", {"username": "ann", "password": "a-new-long-pass-42"})
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/verify/")
    assert Event.objects.filter(type="user.password_changed", subject_id=str(user.pk)).count() == 1


def test_lockout_after_five_failures_and_administrator_unlock(client, make_user, admin_user):
    # given five wrong passwords
    make_user("ann")
    for _ in range(5):
        client.post("/accounts/login/", {"username": "ann", "password": "wrong"})
    # then even the right password is refused with a clear message
    response = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Sign-in locked for now" in response.content
    assert b"15 minutes" in response.content
    assert "_auth_user_id" not in client.session
    # when an administrator unlocks it
    admin = HttpClient()
    admin.force_login(admin_user)
    attempt = AccessAttempt.objects.get(username="ann")
    assert admin.post(f"/accounts/settings/locked/{attempt.pk}/unlock/").status_code == 302
    # then the user can sign in again
    response = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 302
    assert AccessAttempt.objects.filter(username="ann").count() == 0
    assert Event.objects.filter(type="user.unlocked").count() == 1


def test_lockout_lifts_by_itself_after_cool_off(client, make_user, time_machine):
    make_user("ann")
    time_machine.move_to("2026-05-01 09:00:00+00:00", tick=False)
    for _ in range(5):
        client.post("/accounts/login/", {"username": "ann", "password": "wrong"})
    assert (
        client.post("/accounts/login/", {"username": "ann", "password": PASSWORD}).status_code
        == 429
    )
    time_machine.move_to("2026-05-01 09:16:00+00:00", tick=False)
    response = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 302


def test_only_permitted_roles_can_unlock(client, make_user):
    make_user("ann")
    for _ in range(5):
        client.post("/accounts/login/", {"username": "ann", "password": "wrong"})
    seller = make_user("seller")
    other = HttpClient()
    other.force_login(seller)
    attempt = AccessAttempt.objects.get(username="ann")
    assert other.post(f"/accounts/settings/locked/{attempt.pk}/unlock/").status_code == 403
    assert AccessAttempt.objects.filter(username="ann").count() == 1


@pytest.mark.parametrize("language,expected", [("ru", "ru"), ("fr", "fr"), ("vi", "vi")])
def test_language_switch_is_remembered(signed_in, make_user, language, expected):
    user = make_user("ann")
    client = signed_in(user)
    response = client.post("/i18n/setlang/", {"language": language, "next": "/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == expected
    user.refresh_from_db()
    assert user.language == expected
    page = client.get("/")
    assert f'<html lang="{expected}">' in page.content.decode()
