"""Web form capture: public endpoint, secret, de-duplication, throttling (SAL-9)."""

import datetime as dt
import json

import pytest
import time_machine
from django.test import Client as HttpClient

from clientbase.core import clock
from clientbase.sales.lead_services import distribution_rule_save, webform_create, webform_digest
from clientbase.sales.models import Activity, Lead, WebForm, WebFormSubmission

URL = "/sales/webforms/submit/"


@pytest.fixture
def issued(admin_user, org):
    return webform_create(
        by=admin_user,
        name="Contact page",
        org_unit=org["team_a"],
        currency="EUR",
        campaign="site",
        per_hour_limit=3,
    )


def post_json(data: dict, **headers):
    return HttpClient(enforce_csrf_checks=True).post(
        URL, json.dumps(data), content_type="application/json", **headers
    )


def test_the_secret_is_kept_only_as_a_digest(issued):
    form = WebForm.objects.get()
    assert issued.secret.startswith("wf_")
    assert form.key_digest == webform_digest(issued.secret)
    assert issued.secret not in (form.key_prefix, form.key_digest)


def test_a_form_post_creates_a_lead_that_is_distributed(issued, admin_user, seller):
    # Given a rule that gives site leads to the seller
    distribution_rule_save(by=admin_user, name="Site", campaign="site", members=[seller])
    # When a visitor posts the plain HTML form (no CSRF token, no session)
    response = HttpClient(enforce_csrf_checks=True).post(
        URL,
        {
            "key": issued.secret,
            "name": "Lucie Bernard",
            "email": "Lucie@Example.org",
            "phone": "+33 1 99 00 11 88",
            "company": "Bernard SARL",
            "message": "Call me about payroll",
        },
    )
    # Then they see a thank-you page and a lead exists for the seller
    assert response.status_code == 200
    assert b"Thank you" in response.content
    lead = Lead.objects.get()
    assert (lead.name, lead.company, lead.kind) == ("Lucie Bernard", "Bernard SARL", "company")
    assert (lead.email_key, lead.phone, lead.needs) == (
        "lucie@example.org",
        "+33199001188",
        "Call me about payroll",
    )
    assert (lead.source, lead.campaign, lead.owner) == ("web form", "site", seller)
    submission = WebFormSubmission.objects.get()
    assert (submission.lead, submission.duplicate, submission.ip) == (lead, False, "127.0.0.1")


def test_json_with_the_key_in_a_header(issued):
    response = post_json(
        {"name": "Tuan", "phone": "+84 28 3823 4567"}, HTTP_X_FORM_KEY=issued.secret
    )
    assert response.status_code == 201
    assert response.json() == {"status": "received", "duplicate": False}
    lead = Lead.objects.get()
    assert (lead.kind, lead.phone, lead.owner, lead.org_unit.name) == (
        "individual",
        "+842838234567",
        None,
        "Team A",
    )


def test_a_second_submission_becomes_an_activity_on_the_open_lead(issued):
    post_json({"key": issued.secret, "name": "Lucie", "email": "lucie@example.org"})
    response = post_json(
        {"key": issued.secret, "name": "Lucie B.", "email": "LUCIE@example.org", "message": "Hi"}
    )
    assert response.json() == {"status": "received", "duplicate": True}
    lead = Lead.objects.get()
    activity = Activity.objects.get(lead=lead)
    assert activity.subject == "Submitted the web form “Contact page” again"
    assert activity.body == "Hi"
    assert WebFormSubmission.objects.filter(duplicate=True, lead=lead).count() == 1


def test_same_phone_is_the_same_person(issued):
    post_json({"key": issued.secret, "name": "A", "phone": "+33199001188"})
    post_json({"key": issued.secret, "name": "A", "phone": "+33 1 99 00 11 88"})
    assert Lead.objects.count() == 1


def test_a_bad_secret_is_a_404_and_nothing_is_kept(issued):
    response = post_json({"key": "wf_wrong", "name": "X", "email": "x@example.org"})
    assert response.status_code == 404
    assert (Lead.objects.count(), WebFormSubmission.objects.count()) == (0, 0)
    WebForm.objects.update(active=False)
    assert (
        post_json({"key": issued.secret, "name": "X", "email": "x@example.org"}).status_code == 404
    )


def test_missing_name_and_contact_is_a_400_with_field_errors(issued):
    response = post_json({"key": issued.secret, "name": " ", "message": "hello"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "name": ["Tell us your name."],
            "email": ["Give an email address or a phone number."],
        }
    }
    assert Lead.objects.count() == 0
    assert WebFormSubmission.objects.get().lead is None
    bad = post_json({"key": issued.secret, "name": "X", "email": "no-at-sign"})
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["email"]


def test_throttled_per_address_per_hour(issued):
    start = clock.now()
    with time_machine.travel(start, tick=False):
        for i in range(3):
            response = post_json(
                {"key": issued.secret, "name": f"P{i}", "phone": f"+3319900118{i}"}
            )
            assert response.status_code == 201
        refused = post_json({"key": issued.secret, "name": "P9", "phone": "+33199001189"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3601"
    assert Lead.objects.count() == 3
    assert WebFormSubmission.objects.count() == 3
    with time_machine.travel(start + dt.timedelta(hours=1, seconds=1), tick=False):
        again = post_json({"key": issued.secret, "name": "P9", "phone": "+33199001189"})
    assert again.status_code == 201


def test_get_is_not_allowed():
    assert HttpClient().get(URL).status_code == 405


def test_settings_pages_show_the_secret_once(signed_in, admin_user, seller, org):
    assert signed_in(seller).get("/sales/webforms/").status_code == 403
    web = signed_in(admin_user)
    response = web.post(
        "/sales/webforms/new/",
        {
            "name": "Landing",
            "source": "landing",
            "campaign": "",
            "org_unit": org["team_b"].pk,
            "currency": "eur",
            "per_hour_limit": 10,
            "active": "on",
        },
    )
    assert response.status_code == 200
    secret = response.context["secret"]
    form = WebForm.objects.get()
    assert (form.name, form.currency, form.key_digest) == ("Landing", "EUR", webform_digest(secret))
    listing = web.get("/sales/webforms/")
    assert secret.encode() not in listing.content
    assert form.key_prefix.encode() in listing.content
    rotated = web.post(f"/sales/webforms/{form.pk}/rotate/")
    form.refresh_from_db()
    assert form.key_digest == webform_digest(rotated.context["secret"]) != webform_digest(secret)
    refused = web.post(
        "/sales/webforms/new/",
        {
            "name": "Landing",
            "source": "x",
            "org_unit": org["team_b"].pk,
            "currency": "EUR",
            "per_hour_limit": 5,
        },
    )
    assert refused.status_code == 400
    assert WebForm.objects.count() == 1
