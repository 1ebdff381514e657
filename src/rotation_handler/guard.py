"""The staging guard that runs before every step.

It asks the gate for the secret (one DescribeSecret, the secret's rules) and decides whether the
step may run: rotation must be enabled, the token must be a version of this secret, and it must
carry AWSPENDING. A token that is already AWSCURRENT means the rotation already finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotation_handler import gate
from rotation_handler.exceptions import RotationNotEnabledError, StagingError
from rotation_handler.state import CURRENT, PENDING, PREVIOUS, SecretState, Verdict

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings

__all__ = ["CURRENT", "PENDING", "PREVIOUS", "SecretState", "Verdict", "check"]


def check(
    sm: SecretsManagerClient, *, secret_id: str, token: str, settings: Settings
) -> tuple[SecretState, Verdict]:
    """Run the guard for one step and return the secret's state with the verdict.

    Raises
    ------
    NotBoundError
        ``SECRET_ARN`` is set and the event names another secret, or (fleet mode,
        :class:`~rotation_handler.exceptions.NotInFleetError`) the secret lacks the fleet's tag.
    RotationNotEnabledError
        Rotation is not enabled on the secret.
    StagingError
        The token is not a version of the secret, it is neither AWSCURRENT nor AWSPENDING, or it
        is AWSPREVIOUS (rolled back).
    """
    state = gate.admit_secret(sm, secret_id, settings)
    if not state.rotation_enabled:
        msg = f"rotation is not enabled on secret {state.arn}: enable it with RotateSecret"
        raise RotationNotEnabledError(msg)
    stages = state.versions.get(token)
    if stages is None:
        msg = (
            f"version {token} is not a version of secret {state.arn}: Secrets Manager passes "
            "the token of the version it staged as AWSPENDING"
        )
        raise StagingError(msg)
    if CURRENT in stages:
        return state, Verdict.ALREADY_CURRENT
    if PREVIOUS in stages:
        # A roll-back moved AWSCURRENT away from this version; promoting it again would retire
        # the key just restored. AWSPENDING may have stayed on it after its rotation succeeded.
        msg = (
            f"version {token} of secret {state.arn} is AWSPREVIOUS (it was rolled back): it is "
            "not promoted again. Take AWSPENDING off it (aws secretsmanager "
            "update-secret-version-stage --version-stage AWSPENDING --remove-from-version-id "
            f"{token}) and start a new rotation"
        )
        raise StagingError(msg)
    if PENDING not in stages:
        msg = (
            f"version {token} of secret {state.arn} is not AWSPENDING: another rotation may "
            "have replaced it; start a new rotation"
        )
        raise StagingError(msg)
    return state, Verdict.PROCEED
