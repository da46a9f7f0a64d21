"""Account notes (ACT-1): immutable, threaded, important ones pinned, empty refused."""

import pytest

from clientbase.clients import queries
from clientbase.clients.models import Note
from clientbase.clients.services import client_create, client_update, note_add, note_comment
from clientbase.core.errors import ServiceError
from clientbase.core.models import AppendOnlyError, Event


@pytest.fixture
def alpha(make_user):
    """A client of a seller in team A."""
    ann = make_user("ann", role="sales", unit="team_a")
    return client_create(by=ann, name="Alpha SARL", email="alpha@example.com")


def test_important_notes_come_first_then_newest(alpha, time_machine):
    ann = alpha.owner
    time_machine.move_to("2026-05-01 09:00:00+00:00", tick=False)
    first = note_add(client=alpha, body="Called about the renewal", by=ann)
    time_machine.move_to("2026-05-02 09:00:00+00:00", tick=False)
    pinned = note_add(client=alpha, body="Pays only by bank transfer", important=True, by=ann)
    time_machine.move_to("2026-05-03 09:00:00+00:00", tick=False)
    latest = note_add(client=alpha, body="Asked for a quote", by=ann)
    comment = note_comment(note=first, body="Renewal confirmed", by=ann)
    notes = queries.notes_of(ann, alpha)
    assert notes == [pinned, latest, first]
    assert list(notes[2].comments.all()) == [comment]
    assert (comment.client, comment.parent, comment.actor) == (alpha, first, ann)


def test_counts_of_the_last_day_and_two_months(alpha, time_machine):
    ann = alpha.owner
    time_machine.move_to("2026-01-15 12:00:00+00:00", tick=False)
    note_add(client=alpha, body="Too old", by=ann)
    time_machine.move_to("2026-02-20 12:00:00+00:00", tick=False)
    note_add(client=alpha, body="Within two months", by=ann)
    time_machine.move_to("2026-04-19 10:00:00+00:00", tick=False)
    recent = note_add(client=alpha, body="Yesterday", by=ann)
    time_machine.move_to("2026-04-20 09:00:00+00:00", tick=False)
    note_comment(note=recent, body="Today", by=ann)
    counts = queries.note_counts(alpha)
    assert (counts.last_day, counts.last_two_months) == (2, 3)


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_an_empty_note_is_refused(alpha, body):
    with pytest.raises(ServiceError) as refused:
        note_add(client=alpha, body=body, by=alpha.owner)
    assert refused.value.message_dict == {"body": ["A note cannot be empty."]}
    assert Note.objects.count() == 0
    assert Event.objects.filter(type="note.added").count() == 0


def test_comments_thread_one_level_only(alpha):
    note = note_add(client=alpha, body="Root", by=alpha.owner)
    comment = note_comment(note=note, body="Answer", by=alpha.owner)
    with pytest.raises(ServiceError) as refused:
        note_comment(note=comment, body="Answer to the answer", by=alpha.owner)
    assert refused.value.message_dict == {
        "parent": ["Answer the note itself, not one of its comments."]
    }
    assert Note.objects.count() == 2


def test_a_note_cannot_be_altered_by_any_route(alpha):
    note = note_add(client=alpha, body="Original", by=alpha.owner)
    note.body = "Rewritten"
    with pytest.raises(AppendOnlyError):
        note.save()
    with pytest.raises(AppendOnlyError):
        note.delete()
    with pytest.raises(AppendOnlyError):
        Note.objects.filter(pk=note.pk).update(body="Rewritten")
    with pytest.raises(AppendOnlyError):
        Note.objects.filter(pk=note.pk).delete()
    with pytest.raises(AppendOnlyError):
        Note._base_manager.filter(pk=note.pk).update(body="Rewritten")
    with pytest.raises(AppendOnlyError):
        alpha.notes.update(body="Rewritten")
    assert Note.objects.get(pk=note.pk).body == "Original"


def test_notes_are_in_the_newsfeed(alpha):
    note_add(client=alpha, body="Prefers calls after 5 pm\nsecond line", by=alpha.owner)
    event = Event.objects.get(type="note.added")
    assert (event.client, event.category) == (alpha, "account")
    assert event.message == "Note added: Prefers calls after 5 pm"


def test_profile_shows_notes_and_adds_them(signed_in, alpha):
    client = signed_in(alpha.owner)
    response = client.post(
        f"/clients/{alpha.pk}/notes/", {"body": "Wants a callback", "important": "on"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/clients/{alpha.pk}/#notes"
    note = Note.objects.get()
    assert (note.body, note.important, note.actor) == ("Wants a callback", True, alpha.owner)
    response = client.post(f"/clients/{alpha.pk}/notes/{note.pk}/comments/", {"body": "Done"})
    assert response.status_code == 302
    page = client.get(f"/clients/{alpha.pk}/")
    html = page.content.decode()
    assert "Wants a callback" in html
    assert "Done" in html
    assert "2 in the last 24 hours · 2 in two months" in html


def test_empty_note_from_the_page_saves_nothing(signed_in, alpha):
    client = signed_in(alpha.owner)
    response = client.post(f"/clients/{alpha.pk}/notes/", {"body": "  "}, follow=True)
    assert "A note cannot be empty." in response.content.decode()
    assert Note.objects.count() == 0


def test_read_only_users_cannot_write_notes(signed_in, make_user, alpha):
    viewer = make_user("vera", role="read-only", unit="company")
    client = signed_in(viewer)
    assert client.get(f"/clients/{alpha.pk}/").status_code == 200
    assert client.post(f"/clients/{alpha.pk}/notes/", {"body": "Hi"}).status_code == 403
    assert Note.objects.count() == 0


def test_other_teams_get_404_for_notes(signed_in, api_client, make_user, alpha):
    bob = make_user("bob", role="sales", unit="team_b")
    note = note_add(client=alpha, body="Secret", by=alpha.owner)
    assert signed_in(bob).post(f"/clients/{alpha.pk}/notes/", {"body": "x"}).status_code == 404
    http = api_client(bob)
    assert http.get(f"/api/v1/clients/{alpha.pk}/notes").status_code == 404
    response = http.post(
        f"/api/v1/clients/{alpha.pk}/notes/{note.pk}/comments",
        {"body": "x"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert Note.objects.count() == 1


def test_notes_over_the_api(api_client, alpha, time_machine):
    time_machine.move_to("2026-05-01 09:00:00+00:00", tick=False)
    http = api_client(alpha.owner)
    response = http.post(
        f"/api/v1/clients/{alpha.pk}/notes",
        {"body": "Prefers email", "important": True},
        content_type="application/json",
    )
    assert response.status_code == 201
    note = Note.objects.get()
    response = http.post(
        f"/api/v1/clients/{alpha.pk}/notes/{note.pk}/comments",
        {"body": "Noted"},
        content_type="application/json",
    )
    assert response.status_code == 201
    comment = Note.objects.get(parent=note)
    listing = http.get(f"/api/v1/clients/{alpha.pk}/notes")
    assert listing.json() == [
        {
            "id": note.pk,
            "body": "Prefers email",
            "author_id": alpha.owner.pk,
            "created_at": "2026-05-01T09:00:00Z",
            "important": True,
            "comments": [
                {
                    "id": comment.pk,
                    "body": "Noted",
                    "author_id": alpha.owner.pk,
                    "created_at": "2026-05-01T09:00:00Z",
                }
            ],
        }
    ]
    refused = http.post(
        f"/api/v1/clients/{alpha.pk}/notes", {"body": "   "}, content_type="application/json"
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "body", "message": "A note cannot be empty."}]
    assert Note.objects.count() == 2


def test_history_follows_the_client_to_its_new_team(make_user, alpha, admin_user, org):
    from clientbase.core.visibility import visible

    bob = make_user("bob", role="sales", unit="team_b")
    note_add(client=alpha, body="Before the move", by=alpha.owner)
    client_update(client=alpha, by=admin_user, owner=bob, org_unit=org["team_b"])
    seen_by_bob = visible(Event.objects.filter(client=alpha), bob)
    assert sorted(seen_by_bob.values_list("type", flat=True)) == [
        "client.changed",
        "client.created",
        "note.added",
    ]
    assert visible(Event.objects.filter(client=alpha), alpha.owner).count() == 0
    assert queries.notes_of(bob, alpha)[0].body == "Before the move"
