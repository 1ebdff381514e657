"""The trust boundary as a property: nothing app A's operator does reaches app B (issue 23).

The test starts one local world whose function runs in fleet mode with a one-second grace period
(``OLD_KEY_GRACE_PERIOD=1s``, so sweeps act), once per ``OLD_KEY_ACTION`` (delete, deactivate).
Each example adds two new apps to it, A and B, each bound to its own secret by its stack, rotates
each once (B holds one key, so a rotation that wrongly reached B's user would find room to create
a key there) and records B's stack in moto's CloudFormation. Hypothesis then interleaves:

* what A's operator may do, with exactly a real operator's access: ``PutSecretValue`` on A's own
  secret with any ``SecretString`` (objects naming B's user, any key id seen so far, made-up ids,
  other JSON, garbage) and any ``VersionStages`` (or none: AWSCURRENT), alone or followed at once
  by ``RotateSecret`` or a sweep; ``UpdateSecretVersionStage`` on A's secret;
  rotating A (``RotateSecret``, through the world's driver; a failed rotation is retried with its
  token, as the service does) and cancelling it as the runbook says; tagging and
  untagging A's own secret (never an ``aws:`` key: Secrets Manager refuses those); A's sweeps;
  invoking the function with ``Custom::SmtpUserKeys`` requests of their choosing (any request
  type, StackId, LogicalResourceId, UserName, SecretId, PhysicalResourceId), and recording stacks
  of their own (holding A's secret) whose clean-up resource names B's user or A's, then deleting
  them;
* B's own life: rotations (each must complete), sweeps (after waiting out the grace period or
  not), and rotation turned off as the runbook advises after a failed rotation (the next rotation
  turns it back on).

The property: every step of A leaves B's access keys (ids and statuses), B's user tags (its
binding and the function's records) and B's secret (its versions and labels) exactly as they
were; after every step B's invariants hold (at most two keys, no orphan, AWSCURRENT's key Active)
and B's AWSCURRENT logs in over SMTP. A refusal of anything A asks is fine: effects are asserted.

Seen failing: with ``gate.check_binding`` returning early, the default profile finds (both
actions) A writing a value naming B's user and rotating A, which creates a key on B's user and
writes A's rotation intent on it.

Settings profiles (this test only): ``trust-boundary`` (default: small and derandomized, so CI is
reproducible) and ``trust-boundary-deep``, chosen with ``HYPOTHESIS_PROFILE=deep``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
from typing import TYPE_CHECKING, Any, Final

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from rotation_handler.custom_resource import RESOURCE_TYPE
from rotation_handler.exceptions import RotationError
from sandbox import answers, invariants, stacks
from sandbox.fleet import TAG_KEY, add_app, fleet_env
from sandbox.secrets_manager import (
    CURRENT,
    PENDING,
    PREVIOUS,
    LocalLambdaContext,
    RotationInProgressError,
)
from ses_smtp_rotator.contract import BINDING_TAG, FUNCTION_TAGS
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

GRACE: Final = "1s"
PAST_THE_GRACE: Final = 1.1  # seconds
FUNCTION_ENV: Final = {
    "OLD_KEY_GRACE_PERIOD": GRACE,
    "SMTP_TEST_TIMEOUT_SECONDS": "3",
    "SMTP_ATTEMPT_TIMEOUT_SECONDS": "1",
}
# With "delete" B's sweep leaves B one key (room for a key a rotation wrongly made there).
OLD_KEY_ACTIONS: Final = ("delete", "deactivate")
# Who a request names: app B, app A, the world's own user (outside the fleet), no one.
WHO: Final = ("B", "A", "outside", "nobody")
MADE_UP_KEY: Final = "AKIAMADEUPMADEUP0001"
# A's made-up password and secret key: shorter than the leak scan's minimum, so a failure report
# that prints A's writes is not taken for a leak.
FAKE: Final = "fake"
STAGES: Final = (CURRENT, PENDING, PREVIOUS, "custom-label")
REQUEST_TYPES: Final = ("Create", "Update", "Delete")
LOGICAL_IDS: Final = (stacks.KEYS_RESOURCE, "SmtpSecret", "Other")

_HEALTH: Final = (HealthCheck.too_slow, HealthCheck.data_too_large)  # a step is a whole rotation
settings.register_profile(
    "trust-boundary",
    max_examples=6,  # per OLD_KEY_ACTION: about 35 s for both on a slow 2-core machine
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_HEALTH,
)
settings.register_profile(
    "trust-boundary-deep",
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_HEALTH,
)
PROFILE: Final = (
    "trust-boundary-deep" if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else "trust-boundary"
)

# JSON of any shape (a secret's value need not be an object), small enough to stay quick.
ANY_JSON: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def one_of(items: list[str]) -> st.SearchStrategy[str]:
    """One of ``items``, a list read from the world, by an index of a fixed range.

    The lists (key ids, version ids, stacks) are the world's, so their lengths and order may
    differ when hypothesis replays an example; drawing a bounded index keeps the choices the same.
    """
    return st.integers(0, 15).map(lambda index: items[index % len(items)])


def secret_versions(world: World) -> dict[str, tuple[list[str], str]]:
    """Version id -> (labels, digest of the value) of the world's secret (moto's state)."""
    return {
        vid: (sorted(v["version_stages"]), hashlib.sha256(v["secret_string"].encode()).hexdigest())
        for vid, v in world.driver._secret().versions.items()
        if "secret_string" in v  # the version RotateSecret staged holds nothing yet
    }


def app_state(world: World) -> dict[str, Any]:
    """What no other app may change: the user's keys and tags, the secret's versions."""
    return {
        "keys": world.access_keys(),
        "tags": world.user_tags(),
        "versions": secret_versions(world),
    }


class TrustBoundaryMachine(RuleBasedStateMachine):
    """Two apps of one fleet; A's operator acts adversarially, B lives normally."""

    def __init__(self, world: World, number: int) -> None:
        super().__init__()
        # Each example adds two new apps to the test's fleet world (starting a world per example
        # would cost most of the test's time); earlier examples' apps are other apps of the fleet.
        self.world = world
        self.a = add_app(world, f"app-a-{number}")
        self.b = add_app(world, f"app-b-{number}")
        # Each app rotated once: B holds one key, so a rotation that wrongly reached B's user
        # would find room to create a key there rather than being stopped by IAM's two-key limit.
        for app in (self.a, self.b):
            assert app.rotate().ok, "an app of the fleet should rotate"
        self.b_stack = stacks.deploy(
            world, stack_name=self.b.user_name, user=self.b.user_name, secret_arn=self.b.secret_arn
        )
        # CloudFormation's side: takes every answer the function PUTs (the test reads effects).
        self._closing = contextlib.ExitStack()
        self.cloudformation = self._closing.enter_context(answers.CloudFormationStandIn())
        # Stacks A's operator recorded (their id -> the user its clean-up resource names).
        self.a_stacks: dict[str, str] = {}
        # Every key id that was ever in the fleet: the shared logs show them all.
        self.seen_keys: dict[str, None] = {}  # in the order seen
        self.errors: list[BaseException] = []
        self._see_keys()

    def teardown(self) -> None:
        try:
            self._check_no_leaks()
        finally:
            self._closing.close()

    # -- B's own life ----------------------------------------------------------------------------

    @rule()
    def b_rotates(self) -> None:
        rotation = self.b.rotate(max_attempts=1)
        self.errors += [r.error for a in rotation.attempts for r in a.steps if r.error]
        assert rotation.ok, f"B's rotation failed: {rotation.attempts[-1].error!r}"
        self._see_keys()

    @rule(wait=st.sampled_from((False, False, True)))
    def b_sweeps(self, *, wait: bool) -> None:
        # Waiting out the grace period (for A's sweeps too) is drawn rarely: it costs a second.
        if wait:
            time.sleep(PAST_THE_GRACE)
        summary = self.b.sweep()
        assert summary["SecretId"] == self.b.secret_arn

    @rule()
    def b_turns_rotation_off(self) -> None:
        # As the runbook advises after a failed rotation; B's next rotation turns it back on.
        self.b.sm.cancel_rotate_secret(SecretId=self.b.secret_arn)

    # -- A's operator and A's own rotations (each must leave B exactly as it was) ----------------

    @rule()
    def a_rotates(self) -> None:
        with self._b_untouched():
            try:
                rotation = self.a.rotate(max_attempts=1)
            except RotationInProgressError:
                # An earlier rotation of A failed: the service retries it with the same token.
                rotation = self.a.rotate(token=self.a.driver.pending_version(), max_attempts=1)
            self.errors += [r.error for a in rotation.attempts for r in a.steps if r.error]
            self._see_keys()

    @rule()
    def a_cancels_its_rotation(self) -> None:
        with self._b_untouched():
            self.a.sm.cancel_rotate_secret(SecretId=self.a.secret_arn)
            pending = self.a.driver.pending_version()
            if pending is not None:
                self.a.sm.update_secret_version_stage(
                    SecretId=self.a.secret_arn, VersionStage=PENDING, RemoveFromVersionId=pending
                )

    @rule()
    def a_sweeps(self) -> None:
        with self._b_untouched():
            self._as_a(self.a.sweep)

    @rule(data=st.data(), stages=st.lists(st.sampled_from(STAGES), max_size=3, unique=True))
    def a_writes_its_secret(self, data: st.DataObject, stages: list[str]) -> None:
        text = data.draw(self._secret_strings(), label="SecretString")
        arn = self.a.secret_arn

        def put() -> object:
            # No VersionStages means AWSCURRENT (the service's default); the SDK refuses [].
            if not stages:
                return self.a.sm.put_secret_value(SecretId=arn, SecretString=text)
            return self.a.sm.put_secret_value(SecretId=arn, SecretString=text, VersionStages=stages)

        with self._b_untouched():
            self._as_a(put)

    @rule(
        who=st.sampled_from(("B", "B", "A")),
        then=st.sampled_from(("rotate", "rotate", "sweep", "nothing")),
        data=st.data(),
    )
    def a_points_its_secret_at(self, who: str, then: str, data: st.DataObject) -> None:
        # The plainest attack: ``put-secret-value`` of a value naming a user (it becomes
        # AWSCURRENT), with a key id from the logs or none, then ``rotate-secret`` or the sweep.
        user = self._user(who)
        key = data.draw(one_of([MADE_UP_KEY, *self.seen_keys]) | st.none())
        value: dict[str, Any] = {"iam_user_name": user, "region": self.a.region}
        value |= {"host": self.a.ses.host, "port": self.a.ses.port}
        if key is not None:
            value |= {"access_key_id": key, "username": key, "password": FAKE}
        with self._b_untouched():
            self.a.sm.put_secret_value(SecretId=self.a.secret_arn, SecretString=json.dumps(value))
        if then == "rotate":
            self.a_rotates()
        elif then == "sweep":
            self.a_sweeps()

    @rule(data=st.data(), stage=st.sampled_from(STAGES))
    def a_moves_a_label(self, data: st.DataObject, stage: str) -> None:
        versions = self.a.driver.stages()
        target = data.draw(one_of(list(versions)), label="MoveToVersionId")
        holder = next((vid for vid, labels in versions.items() if stage in labels), None)
        move: dict[str, str] = {"MoveToVersionId": target}
        if holder is not None and holder != target:
            move["RemoveFromVersionId"] = holder
        with self._b_untouched():
            self._as_a(
                lambda: self.a.sm.update_secret_version_stage(
                    SecretId=self.a.secret_arn, VersionStage=stage, **move
                )
            )

    @rule(
        key=st.sampled_from((TAG_KEY, BINDING_TAG, *FUNCTION_TAGS, "team")),
        data=st.data(),
        remove=st.booleans(),
    )
    def a_tags_its_secret(self, key: str, data: st.DataObject, *, remove: bool) -> None:
        value = data.draw(one_of(self._names()), label="tag value")
        with self._b_untouched():
            if remove:
                self.a.sm.untag_resource(SecretId=self.a.secret_arn, TagKeys=[key])
            else:
                self.a.sm.tag_resource(
                    SecretId=self.a.secret_arn, Tags=[{"Key": key, "Value": value}]
                )

    @rule(who=st.sampled_from(("B", "A")))
    def a_records_a_stack(self, who: str) -> None:
        user = self._user(who)
        # A's operator deploys a stack of their own whose clean-up resource names ``user``; its
        # secret is A's (a stack cannot hold a secret its owner may not write).
        name = f"{self.a.user_name}-stack-{len(self.a_stacks)}"
        with self._b_untouched():
            stack = stacks.deploy(
                self.world, stack_name=name, user=user, secret_arn=self.a.secret_arn
            )
        self.a_stacks[stack] = user

    @precondition(lambda self: bool(self.a_stacks))
    @rule(data=st.data())
    def a_deletes_a_stack(self, data: st.DataObject) -> None:
        stack = data.draw(one_of(list(self.a_stacks)), label="StackId")
        with self._b_untouched():
            stacks.deleting(self.world, stack)

    @rule(
        request_type=st.sampled_from(REQUEST_TYPES),
        logical_id=st.sampled_from(LOGICAL_IDS),
        data=st.data(),
    )
    def a_sends_a_custom_resource_request(
        self, request_type: str, logical_id: str, data: st.DataObject
    ) -> None:
        users = tuple(self._user(who) for who in WHO)
        secrets = (self.a.secret_arn, self.b.secret_arn, self.world.secret_arn, "made-up")
        made_up = "arn:aws:cloudformation:us-east-1:123456789012:stack/made-up/1"
        stack_ids = [self.b_stack, made_up, self.b.user_name, *self.a_stacks]
        user = data.draw(st.sampled_from(users), label="UserName")
        stack_id = data.draw(one_of(stack_ids), label="StackId")
        secret_id = data.draw(st.sampled_from(secrets), label="SecretId")
        physical = data.draw(st.sampled_from((user, *users, None)), label="PhysicalResourceId")
        event = self.cloudformation.request(
            request_type,
            resource_type=RESOURCE_TYPE,
            logical_id=logical_id,
            properties={"UserName": user, "SecretId": secret_id},
            physical_id=physical,
            stack_id=stack_id,
        )
        with self._b_untouched():
            self._as_a(lambda: self.world.driver.handler(event, LocalLambdaContext()))

    # -- the property ----------------------------------------------------------------------------

    @invariant()
    def b_keeps_its_invariants_and_logs_in(self) -> None:
        problems = invariants.violations(self.b, login=False)  # logged in below
        assert problems == [], f"B: {problems}"
        assert self.b.login(CURRENT).ok, "B's AWSCURRENT does not log in over SMTP"

    @contextlib.contextmanager
    def _b_untouched(self) -> Iterator[None]:
        before = app_state(self.b)
        yield
        after = app_state(self.b)
        assert after == before, f"a step of A changed B: {before} -> {after}"

    # -- helpers ---------------------------------------------------------------------------------

    def _as_a(self, call: Callable[[], object]) -> None:
        """Make a call of A's; a refusal (the function's or the service's) is an allowed outcome."""
        try:
            call()
        except (RotationError, ClientError) as err:
            self.errors.append(err)

    def _user(self, who: str) -> str:
        names = {"A": self.a.user_name, "B": self.b.user_name, "outside": self.world.user_name}
        return names.get(who, "nobody")

    def _see_keys(self) -> None:
        for app in (self.a, self.b):
            self.seen_keys |= dict.fromkeys(app.access_keys())

    def _names(self) -> list[str]:
        """Values A may write anywhere: names and ids of both apps, and made-up ones."""
        apps = (self.a.secret_arn, self.b.secret_arn, *(self._user(who) for who in WHO))
        return [*apps, MADE_UP_KEY, "default", "x", *self.seen_keys]

    def _secret_strings(self) -> st.SearchStrategy[str]:
        """Any SecretString A's operator may write; most name B's user or a key A has seen."""
        keys = one_of([MADE_UP_KEY, *self.seen_keys])
        a = self.a
        forged = st.fixed_dictionaries(
            {"iam_user_name": st.sampled_from(WHO).map(self._user)},
            optional={
                "access_key_id": keys,
                "username": keys,
                "password": st.just(FAKE),
                "secret_access_key": st.just(FAKE),
                "region": st.sampled_from((a.region, "eu-west-1")),
                "host": st.just(a.ses.host),
                "port": st.just(a.ses.port),
            },
        )
        return st.one_of(
            forged.map(json.dumps),
            forged.map(json.dumps),
            ANY_JSON.map(json.dumps),
            # Not JSON at all (a prefix keeps it from parsing as a number or a literal).
            st.text(max_size=12).map(lambda text: f"garbage {text}"),
        )

    def _check_no_leaks(self) -> None:
        drivers = (self.world.driver, self.a.driver, self.b.driver)
        tokens = {token for driver in drivers for token in driver.rotation_tokens}
        material = leakscan.harvest() | tokens
        leakscan.remember(*tokens)
        texts = [leakscan.exception_text(error) for error in self.errors]
        texts += self.cloudformation.bodies
        assert leakscan.find_leaks(texts, material) == [], "secret material in an error or answer"


@pytest.mark.parametrize("action", OLD_KEY_ACTIONS)
def test_nothing_app_a_operator_does_reaches_app_b(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture, action: str
) -> None:
    # GIVEN a fleet world whose function retires old keys (``action``) after a grace period
    env = fleet_env(more={**FUNCTION_ENV, "OLD_KEY_ACTION": action})
    world = make_world(function_env=env)
    examples = itertools.count()

    class Machine(TrustBoundaryMachine):
        def __init__(self) -> None:
            super().__init__(world, next(examples))

        def teardown(self) -> None:
            super().teardown()
            # Failed steps log their tracebacks, which hold a whole world's frames: let them go.
            for record in caplog.records:
                record.exc_info = None

    # WHEN A's operator, A's rotations and B's own life interleave in any order
    # THEN no step of A changes B, and B keeps working (the machine's checks)
    run_state_machine_as_test(Machine, settings=settings.get_profile(PROFILE))
