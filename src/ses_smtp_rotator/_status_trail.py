"""Whether rotation notices can arrive: a CloudTrail trail that logs management events here.

Secrets Manager reports ``RotationFailed``, ``RotationAbandoned`` and ``RotationSucceeded`` to
EventBridge only through CloudTrail, so without a trail that logs management events in the
secret's region the stack's notice rules never fire (``docs/configuration.md``). ``status`` asks,
read-only and cheaply: ``DescribeTrails`` (the trails that apply to the region, multi-region and
organization trails included), then for a trail ``GetTrailStatus`` (is it logging?) and, only when
the trail has custom event selectors, ``GetEventSelectors`` (does it take management events?).
Two calls when the first trail is a plain one that is logging; at most :data:`MAX_TRAILS` trails
are looked at.

The answer is a warning line, never a problem: no trail, or a denied call, does not change the
exit code. A denied call makes the answer "cannot tell", naming the permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from ses_smtp_rotator import _aws

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MAX_TRAILS: Final = 2
_DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_WRITES: Final = frozenset({"All", "WriteOnly"})  # the rotation events are not read-only events
_WHY: Final = (
    "EventBridge gets Secrets Manager's rotation events (RotationFailed, RotationAbandoned, "
    "RotationSucceeded) only through a CloudTrail trail that logs management events"
)


class TrailReader(Protocol):
    """The three CloudTrail calls the check makes (a boto3 ``cloudtrail`` client)."""

    def describe_trails(self, **kwargs: Any) -> Mapping[str, Any]:  # noqa: ANN401 - boto3's
        """Return ``trailList``."""

    def get_trail_status(self, **kwargs: Any) -> Mapping[str, Any]:  # noqa: ANN401 - boto3's
        """Return ``IsLogging`` and more."""

    def get_event_selectors(self, **kwargs: Any) -> Mapping[str, Any]:  # noqa: ANN401 - boto3's
        """Return ``EventSelectors`` or ``AdvancedEventSelectors``."""


@dataclass(frozen=True, kw_only=True)
class Notices:
    """The answer: ``can_arrive`` is ``None`` when the check could not tell."""

    region: str
    can_arrive: bool | None
    reason: str
    trail: str | None = None
    missing_permission: str | None = None

    def as_json(self) -> dict[str, object]:
        """Return the answer as ``status --json``'s ``notices`` object."""
        return {
            "can_arrive": self.can_arrive,
            "region": self.region,
            "trail": self.trail,
            "reason": self.reason,
            "missing_permission": self.missing_permission,
        }

    def as_text(self) -> str:
        """Return the answer as one line of ``status``'s text."""
        if self.can_arrive:
            return f"notices        can arrive: {self.reason}"
        if self.can_arrive is None:
            return f"notices        cannot tell whether rotation notices can arrive: {self.reason}"
        return (
            f"notices        WARNING: rotation notices cannot arrive: {self.reason}. {_WHY} in "
            f"{self.region} (see docs/configuration.md)"
        )


def check(region: str, *, client: TrailReader | None = None) -> Notices:
    """Find out whether a trail logs management events in ``region`` (read-only calls).

    Never raises for an AWS error: a refused or failed call is a "cannot tell" answer.
    """
    try:
        return _check(client or _client(region), region)
    except _Refused as refused:
        denied = refused.code in _DENIED
        reason = f"{refused.action} was {'refused' if denied else 'not answered'} ({refused.code})"
        permission = refused.action if denied else None
        return Notices(
            region=region,
            can_arrive=None,
            reason=reason,
            trail=refused.trail,
            missing_permission=permission,
        )


class _Refused(Exception):  # noqa: N818 - an internal signal, not an error the user sees
    def __init__(self, action: str, code: str, trail: str | None) -> None:
        super().__init__(action)
        self.action, self.code, self.trail = action, code, trail


def _check(cloudtrail: TrailReader, region: str) -> Notices:
    listed = _call(cloudtrail.describe_trails, "cloudtrail:DescribeTrails", None)
    trails = [
        t
        for t in listed.get("trailList", [])
        if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region
    ]
    if not trails:
        return Notices(
            region=region, can_arrive=False, reason=f"no CloudTrail trail applies to {region}"
        )
    # Plain trails first: their default selectors take every management event (one call less).
    trails.sort(key=lambda t: bool(t.get("HasCustomEventSelectors")))
    found: list[str] = []
    for trail in trails[:MAX_TRAILS]:
        name, arn = str(trail.get("Name", "?")), str(trail.get("TrailARN") or trail.get("Name"))
        status = _call(cloudtrail.get_trail_status, "cloudtrail:GetTrailStatus", arn, Name=arn)
        if not status.get("IsLogging"):
            found.append(f"trail {name} is not logging")
            continue
        if trail.get("HasCustomEventSelectors") and not _takes_management_events(
            _call(
                cloudtrail.get_event_selectors, "cloudtrail:GetEventSelectors", arn, TrailName=arn
            )
        ):
            found.append(f"trail {name} logs no management (write) events")
            continue
        return Notices(
            region=region,
            can_arrive=True,
            reason=f"CloudTrail trail {name} logs management events",
            trail=arn,
        )
    if len(trails) > MAX_TRAILS:
        checked = "; ".join(found)
        reason = f"{checked}; {len(trails) - MAX_TRAILS} more trail(s) not checked"
        return Notices(region=region, can_arrive=None, reason=reason)
    return Notices(region=region, can_arrive=False, reason="; ".join(found))


def _takes_management_events(selectors: Mapping[str, Any]) -> bool:
    """Whether basic or advanced event selectors take write management events."""
    for selector in selectors.get("EventSelectors") or []:
        if selector.get("IncludeManagementEvents") and selector.get("ReadWriteType") in _WRITES:
            return True
    for advanced in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in advanced.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {})
        read_only = fields.get("readOnly", {})
        if "Management" in category.get("Equals", []) and read_only.get("Equals") != ["true"]:
            return True
    return False


def _call(
    method: Callable[..., Mapping[str, Any]], action: str, trail: str | None, **kwargs: str
) -> Mapping[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    try:
        answer: Mapping[str, Any] = method(**kwargs)
    except (ClientError, BotoCoreError) as err:
        raise _Refused(action, _aws.error_code(err), trail) from None
    return answer


def _client(region: str) -> TrailReader:
    import boto3  # noqa: PLC0415 - boto3 is an optional dependency

    made: TrailReader = boto3.client("cloudtrail", region_name=region, config=_aws.config())
    return made
