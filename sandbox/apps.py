"""An app as its stack creates it: the SMTP user, its send policy and the secret, bound.

One place for every world (the single-secret world, a fleet's apps, a member account's app and a
second deployment), so they all match what ``fleet/app.yaml`` and ``template.yaml`` deploy: the
secret holds the bootstrap value, and the user carries the tag that binds it to that secret
(``ses-smtp-rotation:bound-to``), which only the stack, or an administrator who may tag IAM
users, sets. ``bound=False`` makes a user as one made by hand: a single-secret function binds it
at its first rotation; a fleet function refuses it until it is adopted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from ses_smtp_rotator.contract import BINDING_TAG

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef as UserTag
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import TagTypeDef as SecretTag

SES_SEND_POLICY: Final = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"}],
}


def create_app(  # noqa: PLR0913 - every option is keyword-only
    iam: IAMClient,
    sm: SecretsManagerClient,
    *,
    user_name: str,
    secret_name: str,
    value: Mapping[str, Any],
    path: str = "/",
    secret_tags: Mapping[str, str] | None = None,
    bound: bool = True,
) -> str:
    """Create the app's secret and user (bound to it unless ``bound=False``); return the ARN."""
    tags: list[SecretTag] = [{"Key": k, "Value": v} for k, v in (secret_tags or {}).items()]
    arn = sm.create_secret(Name=secret_name, SecretString=json.dumps(dict(value)), Tags=tags)["ARN"]
    binding: list[UserTag] = [{"Key": BINDING_TAG, "Value": arn}] if bound else []
    iam.create_user(UserName=user_name, Path=path, Tags=binding)
    iam.put_user_policy(
        UserName=user_name, PolicyName="ses-send", PolicyDocument=json.dumps(SES_SEND_POLICY)
    )
    return arn


def adopt(iam: IAMClient, *, user_name: str, secret_arn: str) -> None:
    """Bind a user made by hand to a secret, as the documented adoption command does."""
    iam.tag_user(UserName=user_name, Tags=[{"Key": BINDING_TAG, "Value": secret_arn}])
