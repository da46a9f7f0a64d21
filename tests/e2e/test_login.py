"""Signing in through a real browser: the authenticator-app step, enrolment and the lockout."""

import re

from axes.models import AccessAttempt
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from clientbase.accounts import services
from clientbase.accounts.models import Role
from tests.conftest import PASSWORD

# django-otp refuses every code for 1 s after a wrong one (its throttle doubles from there);
# a person needs longer than that to type again, a script does not.
OTP_THROTTLE_MS = 1_100


def test_sign_in_with_an_authenticator_code(
    live_server, page, make_user, sign_in, totp_code, wrong_code, screenshot
):
    """Password, then a wrong code is refused at the field, then the right code opens the app."""
    # given a user whose phone app is set up
    user = make_user("tara")
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    # when they give the right password
    response = sign_in(page, "tara", PASSWORD)
    # then they are asked for the second step, not let in
    assert response.status == 302
    expect(page).to_have_url(f"{live_server.url}/accounts/two-factor/verify/?next=/")
    expect(page.locator("h1")).to_have_text("Second step")
    screenshot(page, "two_factor_verify")
    page.goto("/clients/")
    expect(page).to_have_url(f"{live_server.url}/accounts/two-factor/verify/?next=/clients/")
    page.goto("/")
    # when they type a wrong code
    page.fill("#id_code", wrong_code(device.key))
    page.click("button:has-text('Verify')")
    # then the field says so and they stay on the second step
    expect(page.locator(".field-code .invalid-feedback")).to_have_text(
        "That code is not right. Try again, or use a recovery code."
    )
    expect(page).to_have_url(f"{live_server.url}/accounts/two-factor/verify/?next=/")
    # when they type the code the app shows now
    page.wait_for_timeout(OTP_THROTTLE_MS)
    page.fill("#id_code", totp_code(device.key))
    page.click("button:has-text('Verify')")
    # then the dashboard opens, and so does every other page
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Good to see you, tara")
    page.goto("/clients/")
    expect(page).to_have_url(f"{live_server.url}/clients/")
    expect(page.locator("h1")).to_contain_text("Clients")


def test_a_role_that_requires_two_step_login_enrols_the_user_first(
    live_server, page, make_user, admin_user, sign_in, totp_code, screenshot
):
    """After the password the user sets up an app, sees recovery codes, then reaches the app."""
    # given support staff must use two-step login, and Sam in support has none yet
    support = Role.objects.get(slug="support")
    services.role_save(
        role=support,
        name=support.name,
        slug=support.slug,
        scope=support.scope,
        permissions=support.permissions,
        require_two_factor=True,
        by=admin_user,
    )
    sam = make_user("sam", role="support")
    # when Sam gives the right password
    response = sign_in(page, "sam", PASSWORD)
    # then the set-up page opens, saying why, and nothing else is open
    assert response.status == 302
    expect(page).to_have_url(f"{live_server.url}/accounts/two-factor/setup/")
    expect(page.locator(".alert-warning")).to_have_text(
        "Your role requires a second step. Set one up to continue."
    )
    page.goto("/clients/")
    expect(page).to_have_url(f"{live_server.url}/accounts/two-factor/setup/")
    # when Sam's app reads the key from the page and Sam types the code it shows
    screenshot(page, "two_factor_setup")
    key = page.locator("#totp-secret").get_attribute("data-key")
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    page.fill("#id_code", totp_code(key))
    page.click("button:has-text('Turn on')")
    # then ten recovery codes are shown once
    expect(page).to_have_url(f"{live_server.url}/accounts/two-factor/recovery-codes/")
    expect(page.locator(".recovery-codes code")).to_have_count(10)
    screenshot(page, "recovery_codes")
    shown = page.locator(".recovery-codes code").all_inner_texts()
    stored = StaticDevice.objects.get(user=sam).token_set.values_list("token", flat=True)
    assert sorted(shown) == sorted(stored)
    # and the device is on, with the key the page showed
    device = TOTPDevice.objects.get(user=sam)
    assert (device.confirmed, device.key) == (True, key)
    # when Sam continues
    page.click("a:has-text('Continue')")
    # then the dashboard opens
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Good to see you, sam")


def test_wrong_passwords_lock_the_sign_in_until_an_administrator_unlocks_it(
    live_server, new_page, make_user, admin_user, sign_in, screenshot
):
    """Five wrong passwords lock the account (429); an administrator lifts the lock."""
    # given Dora, and an administrator already signed in on another machine
    make_user("dora")
    admin_page = new_page()
    assert sign_in(admin_page, "root", PASSWORD).status == 302
    expect(admin_page).to_have_url(f"{live_server.url}/")
    page = new_page()
    # when Dora gets her password wrong four times
    for attempt in range(1, 5):
        response = sign_in(page, "dora", f"wrong-{attempt}")
        # then each time she is told so and may try again
        assert response.status == 200
        expect(page.locator(".alert-danger")).to_contain_text(
            "Please enter a correct username and password."
        )
    assert AccessAttempt.objects.get(username="dora").failures_since_start == 4
    # when she gets it wrong a fifth time
    response = sign_in(page, "dora", "wrong-5")
    # then signing in is paused, with what happened and for how long
    assert response.status == 429
    expect(page.locator("#lockout-message")).to_have_text(
        "There were 5 wrong sign-in attempts in a row. "
        "For your safety, signing in is paused for 15 minutes."
    )
    screenshot(page, "locked_out")
    # when she now gives the right password
    response = sign_in(page, "dora", PASSWORD)
    # then it is refused all the same, and she is not signed in
    assert response.status == 429
    expect(page.locator("#lockout-message")).to_be_visible()
    # (django-axes counts a try made while locked as one more failure)
    assert AccessAttempt.objects.get(username="dora").failures_since_start == 6
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    # when the administrator opens the locked sign-ins and unlocks Dora's
    admin_page.goto("/accounts/settings/locked/")
    row = admin_page.locator("tbody tr", has_text="dora")
    expect(row.locator(".badge")).to_have_text("Locked")
    screenshot(admin_page, "lockout_list")
    row.locator("button:has-text('Unlock')").click()
    # then the lock is gone
    expect(admin_page.locator(".alert-success")).to_have_text("Sign-in unlocked for dora.")
    expect(admin_page.locator("tbody tr")).to_have_text("No failed sign-ins.")
    assert AccessAttempt.objects.count() == 0
    # and Dora signs in with her password
    response = sign_in(page, "dora", PASSWORD)
    assert response.status == 302
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Good to see you, dora")
