"""Background tasks of the support desk (run by `clientbase worker`)."""

from django_tasks import task

from clientbase.support import mail


@task()
def send_ticket_mail(message_id: int) -> str:
    """Email one reply or automatic message of a ticket."""
    return "sent" if mail.send_ticket_message(message_id) else "already sent"


@task()
def notify_escalation(ticket_id: int, user_id: int) -> str:
    """Tell the escalation contact about an overdue ticket."""
    mail.send_escalation(ticket_id, user_id)
    return "notified"


@task()
def email_survey(survey_id: int) -> str:
    """Mail a survey's invitations."""
    return f"{mail.send_survey_invitations(survey_id)} invitations sent"
