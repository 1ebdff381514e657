"""A tiny Flask app that sends mail through ``SmtpSender``.

One sender per process, created with the app: it keeps one SMTP connection open, moves to new
credentials when the secret rotates, and reopens a connection the server dropped. Run it with
``SES_SMTP_SECRET_ID`` set to the stack's ``SecretArn`` output (the README's Deploy section shows
how) and AWS credentials from the default chain::

    export MAIL_FROM=app@example.com
    flask --app examples.flask_app run

then ``curl -X POST localhost:5000/send -H 'Content-Type: application/json'
-d '{"to": "user@example.com", "subject": "Hi", "body": "Hello"}'``.
"""

from __future__ import annotations

import atexit
import os
from email.message import EmailMessage
from typing import TYPE_CHECKING

from flask import Flask, jsonify, request

from ses_smtp_rotator.client import SmtpSender

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


def create_app(secret_id: str | None = None, *, sender: SmtpSender | None = None) -> Flask:
    """Build the app; the secret comes from ``secret_id`` or ``SES_SMTP_SECRET_ID``."""
    app = Flask(__name__)
    mailer = sender or SmtpSender(secret_id or os.environ["SES_SMTP_SECRET_ID"])
    atexit.register(mailer.close)
    mail_from = os.environ.get("MAIL_FROM", "app@example.com")

    @app.post("/send")
    def send() -> ResponseReturnValue:
        data = request.get_json(silent=True) or {}
        to, subject = data.get("to"), data.get("subject", "")
        if not isinstance(to, str) or not to:
            return jsonify(error="give 'to'"), 400
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = mail_from, to, str(subject)
        message.set_content(str(data.get("body", "")))
        mailer.send(message)
        return jsonify(status="sent"), 202

    return app


if __name__ == "__main__":
    create_app().run()
