"""Send one mail with plain :mod:`smtplib`, the credentials read from the rotated secret.

Run it with ``SES_SMTP_SECRET_ID`` set to the stack's ``SecretArn`` output (the README's Deploy
section shows how) and AWS credentials from the default chain::

    python examples/smtplib_example.py app@example.com user@example.com

The pattern to copy: read the credentials through ``get_smtp_credentials`` (cached), and after a
``535`` read them once more with ``force_fetch=True`` and try again once: the secret may have
rotated since the cache was filled. ``SmtpSender`` does the same for you, and keeps the connection.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import sys
from email.message import EmailMessage

from ses_smtp_rotator.client import SmtpCredentials, get_smtp_credentials
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError

TIMEOUT = 10.0
INVALID_CREDENTIALS = 535


def send_once(creds: SmtpCredentials, message: EmailMessage) -> None:
    """Connect with TLS (certificate verified), log in and send ``message``."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if creds.tls is TlsMode.IMPLICIT:
        smtp = smtplib.SMTP_SSL(creds.host, creds.port, timeout=TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(creds.host, creds.port, timeout=TIMEOUT)
        smtp.starttls(context=context)  # before login: never send credentials in clear
    with smtp:
        smtp.login(creds.username, creds.password)
        smtp.send_message(message)


def send(secret_id: str, message: EmailMessage) -> None:
    """Send ``message`` with the secret's credentials, refreshing them once after a 535."""
    try:
        send_once(get_smtp_credentials(secret_id), message)
    except smtplib.SMTPAuthenticationError as err:
        if err.smtp_code != INVALID_CREDENTIALS:
            raise
        send_once(get_smtp_credentials(secret_id, force_fetch=True), message)


def main(argv: list[str] | None = None) -> int:
    """Send a test mail from ``argv[0]`` to ``argv[1]``."""
    args = sys.argv[1:] if argv is None else argv
    secret_id = os.environ.get("SES_SMTP_SECRET_ID")
    if not secret_id or len(args) != 2:  # noqa: PLR2004 - sender and recipient
        print("usage: SES_SMTP_SECRET_ID=... smtplib_example.py FROM TO", file=sys.stderr)
        return 2
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = args[0], args[1], "SES SMTP test"
    message.set_content("Sent with credentials from AWS Secrets Manager.")
    try:
        send(secret_id, message)
    except (SesSmtpCredentialsError, smtplib.SMTPException, OSError) as err:
        # One line, never a traceback: the library's messages say what to do and hold no secret;
        # smtplib's name the server's answer.
        print(f"not sent: {err}", file=sys.stderr)
        return 1
    print(f"sent to {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
