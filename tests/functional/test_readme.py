"""Every command the README and ``docs/`` show works as written, or says why it cannot run here.

The fenced ``console`` and ``python`` blocks and the inline ``aws ...`` commands of the README and
of every ``docs/*.md`` page are read from the files themselves. Each command must have an entry in
:data:`HOW`: run here (against the local world: moto's server on 127.0.0.1 and the SES-like SMTP
server), exercised by a named part of ``make test``, or out of reach offline with the reason. A
command added to a page without an entry fails :func:`test_every_readme_command_is_accounted_for`,
so the table cannot go stale. Every relative link of those pages must lead to a file (and a
heading) that exists.

Commands that run here run as a user would type them, with four substitutions the offline machine
forces, each visible in :func:`localise` and :func:`expand`: the SES host name becomes the local
server (its port, and ``--region`` for what the host name would have said), ``<placeholders>``
become this world's values, a file under ``/etc`` becomes one under the test's temporary
directory, and ``$SES_SMTP_SECRET_ID`` is this world's secret ARN, as the README's Deploy section
sets it from the stack's ``SecretArn`` output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from botocore.exceptions import ClientError

from sandbox import demo, invariants, local
from sandbox.aws_cli import aws, expand
from sandbox.fleet import add_app, fleet_env
from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password
from tests import leakscan
from tests.unit.test_template_policy import load_template

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

ROOT: Final = Path(__file__).resolve().parents[2]
README: Final = ROOT / "README.md"
DOCS: Final = (README, *sorted((ROOT / "docs").glob("*.md")))
SECRET_ID_VARIABLE: Final = "SES_SMTP_SECRET_ID"
REGION: Final = "eu-west-1"  # the region the README's examples use
SES_HOST: Final = f"email-smtp.{REGION}.amazonaws.com"
RUN: Final = "run here"
SYSTEMD: Final = (
    "out of reach offline: needs systemd; tests/unit/test_sync_examples.py parses the units "
    "(each ExecStart with the CLI's parser), and test_sync_commands runs the same sync lines"
)

FLEET_OFFLINE: Final = (
    "out of reach offline: needs an AWS account; `make template` validates, lints and scans the "
    "fleet templates, tests/unit/test_fleet_templates.py checks their policies and wiring, and "
    "test_fleet_commands_name_real_templates_and_parameters checks the command's files, "
    "parameters and capabilities"
)
LOGS_INSIGHTS_OFFLINE: Final = (
    "out of reach offline: moto has no Logs Insights; tests/functional/test_fleet_dashboard.py "
    "checks the query is the fleet template's saved query and reads only fields the function's "
    "log lines carry"
)
# How each documented command is exercised. Keys are the command as the page writes it.
HOW: Final[dict[str, str]] = {
    "make demo": "Makefile runs `python -m sandbox.demo`: tests/functional/test_demo.py",
    "make test": "this test suite is part of it (.ci/run runs exactly `make test`)",
    "make package": (
        "part of `make test`: tools/wheel_check.py builds, installs the wheel into an empty "
        "environment and runs --version and derive there; test_packaging.py checks the target"
    ),
    'pip install "$(echo dist/ses_smtp_rotator-*.whl)[client]"': (
        "tools/wheel_check.py (`make package`) installs the same wheel offline without its "
        "extras; the extras' packages need the package index"
    ),
    'make demo DEMO_ARGS="--rotations 5 --delay 3"': (
        "DEMO_ARGS go to `python -m sandbox.demo`: parsed below; test_demo.py runs these flags"
    ),
    'make demo DEMO_ARGS="--fail-once createSecret"': (
        "DEMO_ARGS go to `python -m sandbox.demo`: parsed below; test_demo.py runs --fail-once "
        "for every step"
    ),
    'make demo DEMO_ARGS="--grace 0 --restart-every 2"': (
        "DEMO_ARGS go to `python -m sandbox.demo`: parsed below; test_demo.py runs these flags "
        "(test_without_a_grace_period_the_read_once_daemon_fails_and_the_demo_says_why)"
    ),
    "make bench": (
        "by hand (minutes of timing); tests/unit/test_bench.py and "
        "tests/functional/test_bench_world.py run its parts"
    ),
    "make test-deep": (
        "by hand (minutes): the same state machine as tests/functional/test_state_machine.py, "
        "which `make test` runs under its default profile"
    ),
    "make audit": (
        "needs vulnerability data CI cannot reach; `make test` runs it with --allow-offline"
    ),
    "ses-smtp-rotator derive --region eu-west-1": RUN,
    "ses-smtp-rotator derive --region eu-west-1 --region us-east-1 --json": RUN,
    "pass show aws/smtp-key | ses-smtp-rotator derive --region eu-west-1": RUN,
    "ses-smtp-rotator derive --legacy-v2": RUN,
    "read -rs SMTP_PASSWORD && export SMTP_PASSWORD": RUN,
    f"ses-smtp-rotator check --host {SES_HOST} --port 587 --username AKIA...": RUN,
    "read -rs SES_SECRET_ACCESS_KEY && export SES_SECRET_ACCESS_KEY": RUN,
    'ses-smtp-rotator check --secret-id "$SES_SMTP_SECRET_ID"': RUN,
    'ses-smtp-rotator check --secret-id "$SES_SMTP_SECRET_ID" --version-stage AWSPENDING': RUN,
    "make build": (
        "`make template` (part of `make test`) runs the same sam build; "
        "tests/unit/test_makefile.py runs its check for python3.13"
    ),
    ".venv-sam/bin/sam deploy --guided": "out of reach offline: needs an AWS account",
    ".venv-sam/bin/sam list stack-outputs --stack-name <stack>": (
        "out of reach offline: needs a deployed stack; test_stack_output_is_the_templates names "
        "the output"
    ),
    (
        'export SES_SMTP_SECRET_ID="$(aws cloudformation describe-stacks --stack-name <stack> '
        '--query "Stacks[0].Outputs[?OutputKey==\'SecretArn\'].OutputValue" --output text)"'
    ): (
        "out of reach offline: needs a deployed stack; test_stack_output_is_the_templates checks "
        "the output it reads, and every command here runs with the variable set"
    ),
    "make local": (
        "Makefile runs `python -m sandbox.local`: tests/functional/test_local_world.py starts it, "
        "runs the commands it prints with no Docker (a rotation to its end, status healthy, sync "
        "--once, the smtplib example), and stops it with Ctrl-C"
    ),
    "make local LOCAL_ARGS=--sam": (
        "tests/functional/test_local_world.py starts `python -m sandbox.local --sam`, runs the "
        "steps of the rotation it started and the commands it prints, and stops it"
    ),
    (
        ".venv-sam/bin/sam local invoke RotationFunction -t .local/template.json "
        "-e .local/createSecret.json --env-vars .local/env.json --docker-network host"
    ): (
        "out of reach offline: needs Docker; test_local_world.py checks each printed sam line "
        "names the files the world wrote (env.json against template.yaml) and runs the same "
        "event files in-process with env.json applied; test_the_makefile_local_target_... "
        "checks the line is the one `make local` prints"
    ),
    'ses-smtp-rotator export --secret-id "$SES_SMTP_SECRET_ID" --format env': RUN,
    (
        'ses-smtp-rotator export --secret-id "$SES_SMTP_SECRET_ID" --format postfix '
        "--output /etc/postfix/sasl_passwd && postmap /etc/postfix/sasl_passwd"
    ): RUN,
    (
        "aws iam update-access-key --user-name <user> --access-key-id <old key id> --status Active"
    ): RUN,
    (
        'aws secretsmanager update-secret-version-stage --secret-id "$SES_SMTP_SECRET_ID" '
        "--version-stage AWSPENDING --remove-from-version-id <AWSCURRENT version id>"
    ): RUN,
    (
        'aws secretsmanager update-secret-version-stage --secret-id "$SES_SMTP_SECRET_ID" '
        "--version-stage AWSCURRENT --move-to-version-id <AWSPREVIOUS version id> "
        "--remove-from-version-id <AWSCURRENT version id>"
    ): RUN,
    'aws secretsmanager list-secret-version-ids --secret-id "$SES_SMTP_SECRET_ID"': RUN,
    'aws secretsmanager describe-secret --secret-id "$SES_SMTP_SECRET_ID"': RUN,
    "aws iam list-access-keys --user-name <IamUserName>": RUN,
    "aws iam untag-user --user-name <user> --tag-keys ses-smtp-rotation:secret": RUN,
    (
        "aws iam tag-user --user-name <user> --tags "
        "Key=ses-smtp-rotation:bound-to,Value=<SecretArn>"
    ): RUN,
    "aws iam get-access-key-last-used --access-key-id <old key id>": RUN,
    "aws iam get-user --user-name <user>": RUN,
    'aws secretsmanager cancel-rotate-secret --secret-id "$SES_SMTP_SECRET_ID"': RUN,
    (
        'aws secretsmanager update-secret-version-stage --secret-id "$SES_SMTP_SECRET_ID" '
        "--version-stage AWSPENDING --remove-from-version-id <AWSPENDING version id>"
    ): RUN,
    'aws secretsmanager rotate-secret --secret-id "$SES_SMTP_SECRET_ID"': (
        "Secrets Manager then invokes the function, which moto cannot do without Docker; the "
        "local driver plays that part: tests/functional/test_rotation.py"
    ),
    "make build-fleet": (
        "`make template` (part of `make test`) runs the same sam build of fleet/template.yaml; "
        "tests/unit/test_makefile.py checks the target"
    ),
    (
        "make build-fleet && .venv-sam/bin/sam deploy --guided --template-file "
        ".aws-sam/fleet/template.yaml --stack-name ses-smtp-fleet"
    ): FLEET_OFFLINE,
    (
        ".venv-sam/bin/sam deploy --guided --template-file .aws-sam/fleet/template.yaml "
        "--stack-name ses-smtp-fleet"
    ): FLEET_OFFLINE,
    (
        "aws cloudformation deploy --template-file fleet/app.yaml --stack-name billing-mail "
        "--capabilities CAPABILITY_NAMED_IAM --parameter-overrides "
        "FleetFunctionArn=<FleetFunctionArn> SweepRoleArn=<SweepRoleArn>"
    ): FLEET_OFFLINE,
    "aws cloudformation delete-stack --stack-name billing-mail": FLEET_OFFLINE,
    (
        "aws cloudformation create-stack-set --stack-set-name ses-smtp-member-role "
        "--template-body file://fleet/member-role.yaml --capabilities CAPABILITY_NAMED_IAM "
        "--permission-model SERVICE_MANAGED --auto-deployment "
        "Enabled=true,RetainStacksOnAccountRemoval=false --parameters "
        "ParameterKey=FleetRoleArn,ParameterValue=<FleetRoleArn>"
    ): FLEET_OFFLINE,
    (
        "aws cloudformation create-stack-instances --stack-set-name ses-smtp-member-role "
        "--deployment-targets OrganizationalUnitIds=<ou id> --regions us-east-1 "
        "--operation-preferences MaxConcurrentPercentage=25,FailureTolerancePercentage=0"
    ): FLEET_OFFLINE,
    (
        ".venv-sam/bin/sam package --output-template-file .aws-sam/packaged.yaml "
        "--s3-bucket <bucket>"
    ): (
        "out of reach offline: uploads to S3; test_fleet_templates.py checks the SAR metadata "
        "and the files it names"
    ),
    ".venv-sam/bin/sam publish --template .aws-sam/packaged.yaml --region us-east-1": (
        "out of reach offline: needs an AWS account; test_fleet_templates.py checks the SAR "
        "metadata (version = pyproject's, license, README and LICENSE files)"
    ),
    (
        "aws logs start-query --log-group-name /aws/lambda/<fleet stack>-ses-smtp-fleet "
        "--start-time <two hours ago, in epoch seconds> --end-time <now, in epoch seconds> "
        "--query-string 'filter ispresent(hours_since_rotation) | stats "
        "latest(hours_since_rotation) as hours, latest(secret_id) as secret by app | sort hours "
        "desc | limit 20'"
    ): LOGS_INSIGHTS_OFFLINE,
    "aws logs get-query-results --query-id <queryId from start-query>": LOGS_INSIGHTS_OFFLINE,
    "python: client": RUN,
    "python: django settings": RUN,
    (
        'ses-smtp-rotator sync --secret-id "$SES_SMTP_SECRET_ID" --format postfix --output '
        '/etc/postfix/sasl_passwd --once --on-change "postmap /etc/postfix/sasl_passwd && '
        'postfix reload"'
    ): RUN,
    (
        'ses-smtp-rotator sync --secret-id "$SES_SMTP_SECRET_ID" --format env --output '
        "/etc/myapp/smtp.env --interval 60"
    ): RUN,
    (
        "sudo install -D -m 0644 examples/systemd/ses-smtp-sync.env /etc/ses-smtp-rotator/sync.env"
    ): RUN,
    (
        "sudo install -m 0644 examples/systemd/ses-smtp-sync.service "
        "examples/systemd/ses-smtp-sync.timer /etc/systemd/system/"
    ): RUN,
    "sudo install -m 0644 examples/systemd/ses-smtp-sync-loop.service /etc/systemd/system/": RUN,
    "sudo systemctl daemon-reload && sudo systemctl enable --now ses-smtp-sync.timer": SYSTEMD,
    (
        "sudo systemctl daemon-reload && sudo systemctl enable --now ses-smtp-sync-loop.service"
    ): SYSTEMD,
    "journalctl -u ses-smtp-sync.service": SYSTEMD,
    'ses-smtp-rotator status --secret-id "$SES_SMTP_SECRET_ID"': RUN,
    'ses-smtp-rotator status --secret-id "$SES_SMTP_SECRET_ID" --json --show-key-ids': RUN,
    "ses-smtp-rotator status --fleet default": (
        "run on a local fleet by tests/functional/test_status_fleet.py::"
        "test_the_documented_fleet_commands_run_as_written"
    ),
    "ses-smtp-rotator status --fleet default --region eu-west-1,us-east-1 --json": (
        "run on a local fleet by tests/functional/test_status_fleet.py::"
        "test_the_documented_fleet_commands_run_as_written"
    ),
    'ses-smtp-rotator rotate --secret-id "$SES_SMTP_SECRET_ID" --wait': RUN,
    'ses-smtp-rotator rotate --secret-id "$SES_SMTP_SECRET_ID"': RUN,
}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Return (language, body) of every fenced block of ``text``."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def console_commands(body: str) -> list[str]:
    """The commands of a console block: prompts, comments and line continuations removed."""
    commands: list[str] = []
    for line in body.replace("\\\n", " ").splitlines():
        command = re.sub(r"\s+#.*$", "", line.removeprefix("$ ")).strip()
        if command and not command.startswith("#"):
            commands.append(re.sub(r"\s+", " ", command))
    return commands


def readme_commands() -> dict[str, str]:
    """Every command of the README and docs -> its kind (``console``, ``inline``) or code."""
    text = "\n".join(page.read_text(encoding="utf-8") for page in DOCS)
    found: dict[str, str] = {}
    for language, body in fenced_blocks(text):
        if language == "console":
            found |= dict.fromkeys(console_commands(body), "console")
        elif language == "python":
            name = "python: django settings" if "EMAIL_BACKEND" in body else "python: client"
            found[name] = body
    for span in re.findall(r"`(aws [^`]+)`", text):
        found.setdefault(re.sub(r"\s+", " ", span), "inline")
    return found


def test_every_readme_command_is_accounted_for() -> None:
    # GIVEN the README's commands / THEN each has an entry, and no entry is left over
    commands = readme_commands()
    assert sorted(set(commands) - set(HOW)) == [], "README commands without an entry in HOW"
    assert sorted(set(HOW) - set(commands)) == [], "HOW entries the README no longer shows"


def test_the_makefile_demo_target_is_what_test_demo_runs() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*\n\t(.*)$", makefile, flags=re.MULTILINE)
    assert recipe is not None
    assert "python -m sandbox.demo $(DEMO_ARGS)" in recipe.group(1)
    assert "from sandbox import demo" in (ROOT / "tests/functional/test_demo.py").read_text()
    # AND the README's DEMO_ARGS are options the demo takes
    for command in _commands("make demo DEMO_ARGS="):
        args = demo.build_parser().parse_args(shlex.split(command.split("=", 1)[1])[0].split())
        assert args.rotations >= 1


def test_the_makefile_local_target_is_what_test_local_world_runs() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^local:.*\n\t(.*)$", makefile, flags=re.MULTILINE)
    assert recipe is not None
    assert "python -m sandbox.local $(LOCAL_ARGS)" in recipe.group(1)
    assert '"sandbox.local"' in (ROOT / "tests/functional/test_local_world.py").read_text()
    # AND the docs' sam line is what the world prints for createSecret with the default folder
    (documented,) = _commands(".venv-sam/bin/sam local invoke")
    assert documented == local.sam_command(ROOT / ".local", "createSecret", root=ROOT)


# --- running the commands ---------------------------------------------------------------------


def localise(command: str, world: World | None, values: dict[str, str], tmp_path: Path) -> str:
    """The substitutions an offline machine forces (see the module docstring)."""
    if world is not None:
        command = command.replace(
            f"--host {SES_HOST} --port 587 --username",
            f"--host {world.ses.host} --port {world.ses.port} --region {REGION} --username",
        )
    command = re.sub(r"/etc/(?:[\w.-]+/)+", f"{tmp_path}/", command)
    for placeholder, value in values.items():
        command = command.replace(f"<{placeholder}>", value)
    return command


def cli(args: str, *, env: dict[str, str] | None = None, stdin: str = "") -> tuple[int, str, str]:
    """Run one ``ses-smtp-rotator`` command line in a fresh process, as a shell would."""
    program = shutil.which("ses-smtp-rotator", path=str(Path(sys.executable).parent))
    assert program is not None, "the console script is not installed"
    argv = expand(shlex.split(args), {**os.environ, **(env or {})})
    assert argv[0] == "ses-smtp-rotator"
    done = subprocess.run(  # noqa: S603 - our own console script, argv from the README
        [program, *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def served_world(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """A rotated world for eu-west-1 behind moto's server, which other processes reach too.

    ``SES_SMTP_SECRET_ID`` holds its secret's ARN, as the README's Deploy section sets it.
    """
    smtp_client.clear_cache()
    world = make_world(region=REGION, moto_server=True)
    monkeypatch.setenv(SECRET_ID_VARIABLE, world.secret_arn)
    assert world.rotate().ok
    yield world
    smtp_client.clear_cache()


def _commands(prefix: str) -> list[str]:
    return [c for c in readme_commands() if c.startswith(prefix)]


def test_derive_commands(served_world: World) -> None:
    # GIVEN the secret access key of the current SMTP credentials (the README's `read -rs`)
    key = served_world.value()["secret_access_key"]
    env = {"SES_SECRET_ACCESS_KEY": key}
    one, several, legacy = _commands("ses-smtp-rotator derive")
    (piped,) = _commands("pass show")
    # WHEN each derive command of the README runs / THEN it prints the right password(s)
    assert cli(one, env=env)[:2] == (0, derive_smtp_password(key, REGION) + "\n")
    code, out, _ = cli(several, env=env)
    assert (code, json.loads(out)) == (
        0,
        {
            REGION: derive_smtp_password(key, REGION),
            "us-east-1": derive_smtp_password(key, "us-east-1"),
        },
    )
    _, piped_argv = piped.split(" | ")
    assert cli(piped_argv, stdin=key + "\n")[:2] == (0, derive_smtp_password(key, REGION) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected_v2 = derive_legacy_v2_password(key)
    assert cli(legacy, env=env)[:2] == (0, expected_v2 + "\n")


def test_check_commands(served_world: World, tmp_path: Path) -> None:
    value = served_world.value()
    by_hand = _commands("ses-smtp-rotator check --host")[0]
    command = localise(by_hand, served_world, {}, tmp_path).replace("AKIA...", value["username"])
    # WHEN `check` runs with the right password in SMTP_PASSWORD / THEN the login succeeds
    code, out, err = cli(command, env={"SMTP_PASSWORD": value["password"]})
    assert code == 0, out + err
    # WHEN the password was derived for another region and the secret key is given too
    wrong = {
        "SMTP_PASSWORD": derive_smtp_password(value["secret_access_key"], "us-east-1"),
        "SES_SECRET_ACCESS_KEY": value["secret_access_key"],
    }
    code, out, _ = cli(command, env=wrong)
    # THEN the 535 is diagnosed as a password for us-east-1
    assert code == 1
    assert "wrong-region" in out
    assert "us-east-1" in out
    # WHEN `check --secret-id` reads everything from the secret / THEN the login succeeds
    (by_secret,) = [c for c in _commands("ses-smtp-rotator check --secret-id") if "stage" not in c]
    code, out, err = cli(by_secret)
    assert code == 0, out + err


def test_export_commands(served_world: World, tmp_path: Path) -> None:
    value = served_world.value()
    to_env, to_postfix = _commands("ses-smtp-rotator export")
    # WHEN the env export runs / THEN it prints the current credentials
    code, out, _ = cli(to_env)
    exported = dict(line.split("=", 1) for line in shlex.split(out))
    assert code == 0
    assert exported["SMTP_USERNAME"] == value["username"]
    assert exported["SMTP_PASSWORD"] == value["password"]
    # WHEN the postfix export runs (postmap is postfix's own tool, not on this machine)
    export, postmap = localise(to_postfix, served_world, {}, tmp_path).split(" && ")
    assert postmap.startswith("postmap ")
    assert cli(export)[0] == 0
    # THEN sasl_passwd holds the line for the current key, readable by its owner only
    written = tmp_path / "sasl_passwd"
    line = f"[{served_world.ses.host}]:{served_world.ses.port} {value['username']}:"
    assert written.read_text().startswith(line)
    assert written.read_text().strip().endswith(":" + value["password"])
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


FAKE_POSTFIX_TOOL: Final = '#!/bin/sh\necho "$(basename "$0") $*" >> "$POSTFIX_CALLS"\n'


def postfix_tools(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Stand-ins for postfix's ``postmap`` and ``postfix`` (not on this machine) that log calls."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "postfix-calls.log"
    bin_dir.mkdir()
    for tool in ("postmap", "postfix"):
        (bin_dir / tool).write_text(FAKE_POSTFIX_TOOL)
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "POSTFIX_CALLS": str(calls)}, calls


def test_sync_commands(served_world: World, tmp_path: Path) -> None:
    (once,) = [c for c in _commands("ses-smtp-rotator sync") if "--once" in c]
    (loop,) = [c for c in _commands("ses-smtp-rotator sync") if "--once" not in c]
    env, calls = postfix_tools(tmp_path)
    sasl_passwd = tmp_path / "sasl_passwd"

    def line() -> str:
        value = served_world.value()
        host = f"[{served_world.ses.host}]:{served_world.ses.port}"
        return f"{host} {value['username']}:{value['password']}\n"

    # WHEN the one-pass command runs / THEN sasl_passwd holds the current line, and the map was
    # rebuilt and postfix reloaded, once
    command = localise(once, served_world, {}, tmp_path)
    rebuilt = [f"postmap {sasl_passwd}", "postfix reload"]
    assert cli(command, env=env)[0] == 0
    assert sasl_passwd.read_text() == line()
    assert calls.read_text().splitlines() == rebuilt
    # WHEN it runs again with nothing new / THEN nothing is rebuilt
    assert cli(command, env=env)[0] == 0
    assert calls.read_text().splitlines() == rebuilt
    # WHEN the secret rotates / THEN the next run writes the new line and rebuilds once more
    assert served_world.rotate().ok
    code, out, err = cli(command, env=env)
    assert code == 0, err
    assert sasl_passwd.read_text() == line()
    assert calls.read_text().splitlines() == rebuilt * 2
    assert out == ""
    assert leakscan.find_leaks([out, err], served_world.secret_material()) == []
    # WHEN the loop runs until the env file is written, then gets SIGTERM (systemctl stop)
    smtp_env = tmp_path / "smtp.env"
    with cli_process(localise(loop, served_world, {}, tmp_path)) as process:
        try:
            deadline = time.monotonic() + 30
            while not smtp_env.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            process.terminate()
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)
    # THEN it wrote the current credentials and stopped cleanly
    assert process.returncode == 0, err
    exported = dict(item.split("=", 1) for item in shlex.split(smtp_env.read_text()))
    assert exported["SMTP_USERNAME"] == served_world.value()["username"]
    assert exported["SMTP_PASSWORD"] == served_world.value()["password"]
    assert leakscan.find_leaks([out, err], served_world.secret_material()) == []


def test_status_commands(served_world: World) -> None:
    plain, as_json = sorted(_commands("ses-smtp-rotator status --secret-id"), key=len)
    # WHEN status runs on the rotated secret / THEN it finds no problem
    code, out, err = cli(plain)
    assert code == 0, out + err
    assert "healthy: no problem found" in out
    # WHEN a key is made by hand / THEN status exits 1 and its JSON names the key and the fix
    foreign = served_world.iam.create_access_key(UserName=served_world.user_name)["AccessKey"]
    code, out, err = cli(as_json)
    assert code == 1, err
    (problem,) = json.loads(out)["problems"]
    assert problem["access_key_id"] == foreign["AccessKeyId"]
    user, key_id = served_world.user_name, foreign["AccessKeyId"]
    assert problem["fix"] == [
        f"aws iam delete-access-key --user-name {user} --access-key-id {key_id}"
    ]
    # AND nothing secret was printed
    texts = [cli(plain)[1], out, err]
    assert leakscan.find_leaks(texts, served_world.secret_material()) == []


def test_rotate_commands(served_world: World) -> None:
    waits, starts = sorted(_commands("ses-smtp-rotator rotate"), key=len, reverse=True)
    before = served_world.value()["access_key_id"]
    # WHEN rotate --wait runs in its own process against moto's server, which hands the rotation
    # to the function here (sandbox.rotation_service)
    code, out, err = cli(waits)
    printed = [out, err]
    # THEN it followed each step to the new AWSCURRENT version
    assert code == 0, out + err
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert f"✓ {step}" in out
    assert "rotation finished in" in out.splitlines()[-1]
    after = served_world.value()["access_key_id"]
    assert after != before
    # WHEN rotate runs without --wait / THEN it returns 0, and the rotation it started finishes
    code, out, err = cli(starts)
    assert code == 0, out + err
    assert served_world.service is not None
    assert served_world.service.join(60)
    assert served_world.value()["access_key_id"] not in {before, after}
    assert leakscan.find_leaks([*printed, out, err], served_world.secret_material()) == []


def cli_process(args: str) -> subprocess.Popen[str]:
    """Start one ``ses-smtp-rotator`` command line that runs until stopped (``sync``'s loop)."""
    program = shutil.which("ses-smtp-rotator", path=str(Path(sys.executable).parent))
    assert program is not None, "the console script is not installed"
    argv = expand(shlex.split(args), dict(os.environ))
    return subprocess.Popen(  # noqa: S603 - our own console script, argv from the docs
        [program, *argv[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_systemd_install_commands(tmp_path: Path) -> None:
    # GIVEN the docs' install commands, run as root does (here without sudo, into the test's
    # directory instead of /etc) / THEN each example lands as a 0644 copy of itself
    installs = _commands("sudo install ")
    assert len(installs) == 3
    for command in installs:
        argv = shlex.split(localise(command, None, {}, tmp_path).removeprefix("sudo "))
        subprocess.run(argv, cwd=ROOT, check=True, timeout=30)  # noqa: S603 - docs' own commands
    for name in (
        "ses-smtp-sync.service",
        "ses-smtp-sync.timer",
        "ses-smtp-sync-loop.service",
    ):
        installed = tmp_path / name
        assert installed.read_bytes() == (ROOT / "examples" / "systemd" / name).read_bytes()
        assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    assert (tmp_path / "sync.env").read_bytes() == (
        ROOT / "examples" / "systemd" / "ses-smtp-sync.env"
    ).read_bytes()


def runbook_values(world: World) -> dict[str, str]:
    """What the runbook's ``<placeholders>`` stand for in ``world`` now."""
    stages = world.driver.stages()

    def version(stage: str) -> str:
        return next((v for v, s in stages.items() if stage in s), f"no {stage} version")

    old_key = (
        world.value("AWSPREVIOUS").get("access_key_id", "") if "AWSPREVIOUS" in str(stages) else ""
    )
    return {
        "user": world.user_name,
        "IamUserName": world.user_name,
        "old key id": old_key,
        "SecretArn": world.secret_arn,
        **{f"{stage} version id": version(stage) for stage in ("AWSCURRENT", "AWSPREVIOUS")},
        "AWSPENDING version id": version("AWSPENDING"),
    }


def runbook(world: World, tmp_path: Path, prefix: str, *, contains: str = "") -> dict[str, Any]:
    """Run the README's one ``aws`` command that starts with ``prefix`` (and holds ``contains``)."""
    (command,) = [c for c in _commands(prefix) if contains in c]
    return aws(localise(command, world, runbook_values(world), tmp_path))


def test_runbook_inspect_and_roll_back(served_world: World, tmp_path: Path) -> None:
    # GIVEN a second rotation after which the service left AWSPENDING on the new AWSCURRENT
    # version (AWS documents that it may): AWSPREVIOUS holds the old key, now Inactive
    world = served_world
    world.driver.clear_pending_after_finish = False
    rotation = world.rotate()
    assert rotation.ok
    values = runbook_values(world)
    old_key = values["old key id"]
    # WHEN the read-only runbook commands run / THEN they show the versions and the keys
    listed = runbook(world, tmp_path, "aws secretsmanager list-secret-version-ids")["Versions"]
    assert {values["AWSCURRENT version id"], values["AWSPREVIOUS version id"]} <= {
        v["VersionId"] for v in listed
    }
    assert runbook(world, tmp_path, "aws secretsmanager describe-secret")["ARN"] == world.secret_arn
    assert len(runbook(world, tmp_path, "aws iam list-access-keys")["AccessKeyMetadata"]) == 2
    # WHEN the roll-back runs as written
    roll_back = "aws secretsmanager update-secret-version-stage"
    runbook(world, tmp_path, "aws iam update-access-key")
    runbook(world, tmp_path, roll_back, contains="AWSPENDING --remove-from-version-id <AWSCURRENT")
    runbook(world, tmp_path, roll_back, contains="--version-stage AWSCURRENT")
    # THEN AWSCURRENT is the old version again, its key is Active and logs in
    assert world.value()["access_key_id"] == old_key
    assert world.access_keys()[old_key] == "Active"
    assert invariants.violations(world) == []
    # AND the rolled-back version carries no AWSPENDING, so a retry of its token changes nothing
    assert world.driver.pending_version() is None
    world.driver.attempt(rotation.token)
    assert world.value()["access_key_id"] == old_key
    assert world.access_keys()[old_key] == "Active"
    # AND the next rotation treats the rolled-back-from key as the old one
    world.driver.clear_pending_after_finish = True
    assert world.rotate().ok
    assert invariants.violations(world) == []
    assert old_key in world.access_keys()


def test_runbook_release_a_user_another_secret_claimed(served_world: World, tmp_path: Path) -> None:
    # GIVEN a user bound to a secret that no longer exists (a deleted stack kept its user), and
    # the owner record an earlier version wrote for it
    world = served_world
    gone = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:deleted-stack-AbCdEf"
    world.iam.tag_user(
        UserName=world.user_name,
        Tags=[
            {"Key": "ses-smtp-rotation:bound-to", "Value": gone},
            {"Key": "ses-smtp-rotation:secret", "Value": gone},
        ],
    )
    refused = world.rotate(max_attempts=1)
    assert not refused.ok
    assert gone in str(refused.attempts[-1].error)
    world.cancel_rotation(refused.token)
    # WHEN an administrator runs the runbook's commands: bind the user, drop the old record
    runbook(world, tmp_path, "aws iam tag-user")
    runbook(world, tmp_path, "aws iam untag-user")
    # THEN the next rotation completes for this secret, which the user is now bound to
    assert world.rotate(max_attempts=1).ok
    tags = world.iam.list_user_tags(UserName=world.user_name)["Tags"]
    assert {"Key": "ses-smtp-rotation:bound-to", "Value": world.secret_arn} in tags


def test_runbook_checks_whether_a_user_iam_hides_exists(world: World, tmp_path: Path) -> None:
    # GIVEN the runbook's check for a user a fleet's path-scoped policy hides
    values = runbook_values(world)
    (command,) = _commands("aws iam get-user")
    # WHEN an administrator runs it for the secret's user / THEN IAM shows the user
    assert aws(localise(command, world, values, tmp_path))["User"]["UserName"] == world.user_name
    # AND for a mistyped name (or a user deleted by hand) IAM answers NoSuchEntity
    mistyped = localise(command, world, {**values, "user": "ses-smtp-usr"}, tmp_path)
    with pytest.raises(ClientError, match="NoSuchEntity"):
        aws(mistyped)


def test_runbook_adopts_a_user_made_by_hand_for_a_fleet(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    # GIVEN a fleet function and an app whose user was made by hand (bound to no secret)
    fleet_world = make_world(function_env=fleet_env())
    member = add_app(fleet_world, "app-by-hand", bound=False)
    refused = member.rotate(max_attempts=1)
    assert not refused.ok
    assert "bound to no secret" in str(refused.attempts[-1].error)
    member.cancel_rotation(refused.token)
    # WHEN someone who may tag IAM users runs the documented adoption command
    runbook(member, tmp_path, "aws iam tag-user")
    # THEN the fleet function rotates it
    assert member.rotate(max_attempts=1).ok
    assert member.login().ok


def test_runbook_old_key_last_used(served_world: World, tmp_path: Path) -> None:
    # GIVEN a second rotation, after which a reader still logs in with the old key
    world = served_world
    assert world.rotate().ok
    assert world.access_keys()[runbook_values(world)["old key id"]] == "Inactive"
    # WHEN the runbook asks IAM when the old key was last used / THEN SES's use shows
    used = runbook(world, tmp_path, "aws iam get-access-key-last-used")["AccessKeyLastUsed"]
    assert used["ServiceName"] == "ses"
    assert used["Region"] == REGION


def test_runbook_start_a_stuck_rotation_over(
    served_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rotation stuck in testSecret: SES keeps refusing the new key past the budget
    world = served_world
    current_key = world.value()["access_key_id"]
    monkeypatch.setenv("SMTP_TEST_TIMEOUT_SECONDS", "0.3")
    world.cold_start()
    world.ses.propagation_delay = 60.0
    stuck = world.rotate(max_attempts=1)
    assert not stuck.ok
    # AND the runbook's check of the pending credentials names the cause (the key is too new)
    (check_pending,) = [c for c in _commands("ses-smtp-rotator check --secret-id") if "stage" in c]
    code, out, err = cli(check_pending)
    assert code == 1, out + err
    assert "FAILED (auth-rejected)" in out
    assert "likely cause (key-too-new)" in out
    monkeypatch.setenv("SMTP_TEST_TIMEOUT_SECONDS", "10")
    world.cold_start()
    world.ses.propagation_delay = 0.0
    # WHEN the runbook's three commands run (moto cannot invoke the function: the driver
    # plays RotateSecret's part, turning rotation on again and running the four steps)
    runbook(world, tmp_path, "aws secretsmanager cancel-rotate-secret")
    runbook(
        world,
        tmp_path,
        "aws secretsmanager update-secret-version-stage",
        contains="<AWSPENDING version id>",
    )
    assert world.driver.pending_version() is None
    world.driver.enable_rotation()
    rotation = world.rotate()
    # THEN a new rotation completes with another token, and nothing is left over
    assert rotation.ok, rotation.attempts[-1].error
    assert rotation.token != stuck.token
    assert world.value()["access_key_id"] != current_key
    assert len(world.access_keys()) <= 2
    assert invariants.violations(world) == []


def test_python_client_snippet(served_world: World) -> None:
    # GIVEN the README's client snippet, as pasted: nothing defined beforehand
    snippet = readme_commands()["python: client"]
    delivered = len(served_world.ses.messages)
    # WHEN it runs / THEN the credentials it read are the secret's, and the message went out
    scope: dict[str, Any] = {}
    exec(snippet, scope)  # noqa: S102 - the README's own example, run as written
    assert scope["creds"].username == served_world.value()["username"]
    assert len(served_world.ses.messages) == delivered + 1


def test_django_settings_snippet(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the README's Django settings / THEN they name the backend and the settings it reads
    monkeypatch.setenv(SECRET_ID_VARIABLE, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x")
    scope: dict[str, Any] = {}
    exec(readme_commands()["python: django settings"], scope)  # noqa: S102 - settings literals
    module, _, name = scope["EMAIL_BACKEND"].rpartition(".")
    backend = sys.modules.get(module) or __import__(module, fromlist=[name])
    assert hasattr(backend, name)
    source = Path(backend.__file__ or "").read_text(encoding="utf-8")
    for setting in ("SES_SMTP_SECRET_ID", "SES_SMTP_SECRET_MAX_AGE", "EMAIL_TIMEOUT"):
        assert setting in scope
        assert setting in source, f"the backend does not read {setting}"


# --- links and the variable -----------------------------------------------------------------------

LINK: Final = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A backticked path under one of the repository's own top-level folders, e.g. `sandbox/world.py`.
REPO_PATH: Final = re.compile(
    r"`((?:bench|docs|events|examples|sandbox|src|tests|tools)/[\w./-]*)`"
)


def anchors(page: Path) -> set[str]:
    """The ``#fragment`` each heading of ``page`` gets (GitHub's rule for plain headings)."""
    if page.suffix != ".md":
        return set()
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def broken_links(page: Path) -> list[str]:
    """The relative links and backticked repository paths of ``page`` that lead nowhere."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)  # commands, not links
    broken: list[str] = []
    for link in LINK.findall(text):
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (fragment and fragment not in anchors(target)):
            broken.append(link)
    broken += [p for p in REPO_PATH.findall(text) if "*" not in p and not (ROOT / p).exists()]
    return broken


@pytest.mark.parametrize("page", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    # GIVEN a page of the README or docs/ / THEN each link and repository path in it exists
    assert broken_links(page) == []


def test_the_link_check_finds_a_broken_link(tmp_path: Path) -> None:
    # GIVEN a page with a link to a missing file, a missing heading and a missing repository path
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n[ok](#title) [gone](missing.md) [no heading](#nowhere) `sandbox/gone.py`\n"
        "[web](https://example.com)\n"
    )
    # THEN the check reports exactly those three
    assert broken_links(page) == ["missing.md", "#nowhere", "sandbox/gone.py"]


def test_the_docs_exist_and_the_readme_stays_short() -> None:
    # THEN the README is the front door (about 300 lines at most) and links every docs/ page
    readme = README.read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    for page in DOCS[1:]:
        assert f"](docs/{page.name})" in readme, f"the README does not link docs/{page.name}"


def test_every_secret_id_comes_from_the_one_variable() -> None:
    # GIVEN every documented command and snippet that names a secret
    for command, kind in readme_commands().items():
        for found in re.findall(r"--secret-id (\S+)", command):
            # THEN it is the variable, never a literal name (the template leaves the secret unnamed)
            assert found == f'"${SECRET_ID_VARIABLE}"', command
        if kind not in {"console", "inline"}:
            assert 'ses-smtp-rotator")' not in kind, "a snippet names the secret literally"


def test_stack_output_is_the_templates() -> None:
    # GIVEN the output the README reads SES_SMTP_SECRET_ID from
    (command,) = [c for c in readme_commands() if c.startswith("export SES_SMTP_SECRET_ID=")]
    (output,) = re.findall(r"OutputKey=='(\w+)'", command)
    # THEN the template declares that output
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    outputs = template[template.index("\nOutputs:") :]
    assert re.search(rf"^  {output}:$", outputs, flags=re.MULTILINE)


# --- the fleet's commands (they need an AWS account: their files and parameters are checked) ----


def _options(command: str) -> dict[str, list[str]]:
    """``--name value...`` of a command line: each option with the words up to the next one."""
    options: dict[str, list[str]] = {}
    current: list[str] = []
    for word in shlex.split(command):
        if word.startswith("--"):
            current = options.setdefault(word[2:], [])
        else:
            current.append(word)
    return options


def _required_capability(template: dict[str, Any]) -> str:
    named = any(
        key in resource.get("Properties", {})
        for resource in template["Resources"].values()
        if resource["Type"].startswith("AWS::IAM::")
        for key in ("UserName", "RoleName", "GroupName")
    )
    return "CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"


def _check_stack_command(path: str, capabilities: list[str], given: set[str]) -> None:
    template = load_template((ROOT / path).read_text(encoding="utf-8"))
    parameters = template["Parameters"]
    assert given <= set(parameters), (path, given - set(parameters))
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    assert required <= given, (path, required - given)
    assert _required_capability(template) in capabilities, path


def test_fleet_commands_name_real_templates_and_parameters() -> None:
    # GIVEN the fleet's deploy commands of the README and docs/fleet.md
    (deploy,) = _commands("aws cloudformation deploy")
    (stack_set,) = _commands("aws cloudformation create-stack-set")
    (instances,) = _commands("aws cloudformation create-stack-instances")
    (delete,) = _commands("aws cloudformation delete-stack")
    # THEN the app's deploy names the app template, every parameter it must, and the capability
    options = _options(deploy)
    overrides = {item.split("=", 1)[0] for item in options["parameter-overrides"]}
    _check_stack_command(options["template-file"][0], options["capabilities"], overrides)
    # AND the delete removes the stack that deploy created
    assert _options(delete)["stack-name"] == options["stack-name"]
    # AND the StackSet rolls out the member role with its required parameter
    options = _options(stack_set)
    body = options["template-body"][0].removeprefix("file://")
    keys = {item.split(",")[0].removeprefix("ParameterKey=") for item in options["parameters"]}
    _check_stack_command(body, options["capabilities"], keys)
    assert _options(instances)["stack-set-name"] == options["stack-set-name"]
    # AND the fleet's sam deploy uses what `make build-fleet` builds
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in _commands(".venv-sam/bin/sam deploy --guided --template-file"):
        built = _options(command)["template-file"][0]
        build_dir = str(Path(built).parent)
        assert f"--template-file fleet/template.yaml --build-dir {build_dir}" in makefile
