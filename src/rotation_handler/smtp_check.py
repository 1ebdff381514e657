"""testSecret's SMTP side: log in with the pending credentials while the key reaches SES.

A new IAM key takes seconds to propagate to SES, so an authentication failure (535, 454) is
retried with back-off within a budget; anything else (TLS, DNS, 530, a timeout) fails at once.
"""

from __future__ import annotations

import contextlib
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Final

from rotation_handler.exceptions import SmtpTestError
from rotation_handler.observability import logger
from ses_smtp_rotator import smtp

if TYPE_CHECKING:
    from ses_smtp_rotator.secret import SmtpSecret

# Back-off between SMTP login attempts while a new key propagates to SES: short first waits
# because propagation usually takes a few seconds, capped so the wait overshoots by < 1 s.
_FIRST_WAIT: Final = 0.25
_MAX_WAIT: Final = 1.0


@dataclass(frozen=True)
class Outcome:
    """How the login went: the last probe, how many attempts, and the seconds they took."""

    result: smtp.ProbeResult
    attempts: int
    elapsed: float

    def failure(self) -> str:
        """Say why the login failed and what to check (no server text, no credential)."""
        if not self.result.retryable:
            return f"SMTP login with the pending credentials failed: {self.result.message}"
        return (
            f"SMTP login with the pending credentials was still rejected after {self.attempts} "
            f"attempts in {self.elapsed:.1f} s ({self.result.message}). New keys usually reach "
            "SES within seconds; Secrets Manager will retry the rotation. If it keeps failing, "
            "raise SMTP_TEST_TIMEOUT_SECONDS or check the region, host and the user's "
            "ses:SendRawEmail."
        )


def log_in(pending: SmtpSecret, *, budget: float, attempt_timeout: float) -> Outcome:
    """Log in until it works, fails for a reason waiting cannot fix, or ``budget`` runs out."""
    started = time.monotonic()
    deadline = started + budget
    attempts, wait = 0, _FIRST_WAIT
    while True:
        attempts += 1
        result = smtp.probe_login(
            host=pending.host,
            port=pending.port,
            username=str(pending.access_key_id),
            password=str(pending.password),
            tls=pending.tls,
            timeout=max(0.1, min(attempt_timeout, deadline - time.monotonic())),
        )
        # One line per attempt (no server text, no credential): `rotate --wait` shows them live.
        logger.info(
            "smtp login attempt", extra={"attempt": attempts, "outcome": str(result.outcome)}
        )
        if result.ok or not result.retryable or time.monotonic() + wait > deadline:
            return Outcome(result, attempts, time.monotonic() - started)
        time.sleep(wait)
        wait = min(wait * 2, _MAX_WAIT)


def send_message(
    pending: SmtpSecret, *, sender: str, recipient: str, secret_name: str, timeout: float
) -> None:
    """Send one message, proving the user may ses:SendRawEmail (not only log in).

    Raises
    ------
    SmtpTestError
        The message was refused or could not be sent.
    """
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = "SES SMTP credential rotation test"
    message.set_content(f"Pending SMTP credentials of {secret_name} can send mail.\n")
    try:
        connection = smtp.connect(pending.host, pending.port, tls=pending.tls, timeout=timeout)
        try:
            connection.login(str(pending.access_key_id), str(pending.password))
            connection.send_message(message)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.quit()
    except smtplib.SMTPResponseException as err:
        # Only the code: the server's text is not ours to pass on.
        msg = (
            f"the test message from {sender} to {recipient} was refused (SMTP {err.smtp_code}): "
            "check that the sender is a verified SES identity the user may ses:SendRawEmail from"
        )
        raise SmtpTestError(msg) from None
    except (smtplib.SMTPException, OSError) as err:
        msg = f"the test message could not be sent ({type(err).__name__}): check the endpoint"
        raise SmtpTestError(msg) from None
