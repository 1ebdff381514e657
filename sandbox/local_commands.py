"""What ``make local`` prints: the lines that point a shell at the world, and what to run next.

Every printed command runs as pasted from the repository's root (sam by its path in
``.venv-sam``), in the order printed; ``tests/functional/test_local_world.py`` runs them.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Final

from sandbox.events import STEPS
from sandbox.local_sam import BUILT_CODE, DOCKER_DESKTOP_HOST, sam_command, shown

if TYPE_CHECKING:
    from pathlib import Path

    from sandbox.ses_smtp import SesSmtpServer

FAKE_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
SYNC_FILE: Final = "smtp.env"
"""What the printed ``sync --once`` writes, in ``--dir`` (removed with the rest on exit)."""


def shell_setup(out_dir: Path, *, arn: str, endpoint: str, region: str) -> list[str]:
    """Return the shell lines that point the CLI, the examples and sam at this world."""
    credentials = " ".join(f"{name}={value}" for name, value in FAKE_CREDENTIALS.items())
    return [
        ". .venv/bin/activate",
        f"export {credentials} AWS_REGION={region} AWS_DEFAULT_REGION={region}",
        f"export SES_SMTP_SECRET_ID={shlex.quote(arn)}",
        f"export AWS_ENDPOINT_URL={shlex.quote(endpoint)}",
        f"export SSL_CERT_FILE={shlex.quote(str(out_dir / 'ca' / 'ca.pem'))}",
    ]


def cli_commands(out_dir: Path, *, rotated: bool) -> list[str]:
    """Return the CLI and example lines to run against this world, in order.

    ``rotated``: the secret holds credentials already (the sam steps ran), so the lines that read
    them come first and a rotation the world runs itself last; otherwise that rotation comes
    first, then its state, the file ``sync`` keeps and a mail sent with the new credentials.
    """
    secret = '--secret-id "$SES_SMTP_SECRET_ID"'  # noqa: S105 - an option, not a password
    sync_file = shlex.quote(shown(out_dir / SYNC_FILE))
    rotate = f"ses-smtp-rotator rotate {secret} --wait"
    reads = [
        f"ses-smtp-rotator status {secret}",
        f"ses-smtp-rotator check {secret}",
        f"ses-smtp-rotator sync --once {secret} --output {sync_file}",
        "python examples/smtplib_example.py app@example.com user@example.com",
    ]
    return [*reads, rotate] if rotated else [rotate, *reads]


HEADINGS: Final = {
    "setup": "In another shell, from the repository:",
    "cli": (
        "Then (no Docker needed): a rotation the world runs itself, as the Lambda behind "
        "RotateSecret, its state, the file sync keeps, and a mail sent with the new credentials:"
    ),
    "linux": "Run the steps in order with sam (Docker; Linux, the host network):",
    "docker-desktop": (
        f"On Docker Desktop the container reaches this machine as {DOCKER_DESKTOP_HOST}:"
    ),
    "fleet": (
        "And the fleet (ses-smtp-rotation:fleet=local), each app rotated once: one line per app, "
        "unhealthy ones first:"
    ),
    "after-sam": (
        "Once finishSecret has run: the CLI and an example against the same world, then a "
        "rotation the world runs itself (no Docker):"
    ),
}
"""The printed headings; the commands of each follow, indented by two spaces."""


def announce(  # noqa: PLR0913 - keyword-only, what the announcement shows
    out_dir: Path,
    *,
    arn: str,
    endpoint: str,
    smtp: SesSmtpServer,
    token: str | None,
    region: str,
    fleet: list[str] | None = None,
) -> None:
    """Print what the world is and the commands to run next, section by section.

    ``fleet``: the lines to try on the fleet ``--fleet N`` started, if it did.
    """
    sections = {"setup": shell_setup(out_dir, arn=arn, endpoint=endpoint, region=region)}
    lines = [
        f"Local world: AWS (moto) at {endpoint}, SES-like SMTP at {smtp.host}:{smtp.port}",
        f"Secret {arn}: rotation on, run by this process when RotateSecret is called",
    ]
    if token is None:
        sections["cli"] = cli_commands(out_dir, rotated=False)
        lines.append(f"Files in {shown(out_dir)}/: ca/ca.pem, env.json, template.json")
    else:
        sections["linux"] = [sam_command(out_dir, step) for step in STEPS]
        sections["docker-desktop"] = [
            sam_command(out_dir, step, docker_desktop=True) for step in STEPS
        ]
        sections["after-sam"] = cli_commands(out_dir, rotated=True)
        lines.append(f"A rotation is started for sam: AWSPENDING on version {token}")
        lines.append(
            f"Files in {shown(out_dir)}/: one event per step, env.json, template.json, ca/ca.pem"
        )
        if not BUILT_CODE.is_dir():
            lines.append("The function is not built yet: run `make build` first (no Docker).")
    if fleet:
        sections["fleet"] = fleet
    for key, commands in sections.items():
        lines += ["", HEADINGS[key], *(f"  {command}" for command in commands)]
    if token is None:
        lines += ["", "With Docker, to run the steps one by one: make local LOCAL_ARGS=--sam"]
    lines += ["", "Ctrl-C stops the world and removes these files."]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
