"""The custom resource's request parsing and failure answers, without AWS."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from rotation_handler import cloudformation, custom_resource
from rotation_handler.exceptions import CustomResourceError
from rotation_handler.settings import ConfigurationError


def event(**change: Any) -> dict[str, Any]:  # noqa: ANN401 - any event field
    base: dict[str, Any] = {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x?sig=1",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1",
        "RequestId": "request-1",
        "LogicalResourceId": "SmtpUserKeys",
        "ResourceType": custom_resource.RESOURCE_TYPE,
        "ResourceProperties": {"UserName": "app-a", "SecretId": "arn:s"},
    }
    return base | change


@pytest.mark.parametrize(
    "url",
    [
        "https://cloudformation-custom-resource-response.s3.amazonaws.com/x",
        "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/x",
        "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/x",
    ],
)
def test_an_aws_response_url_is_accepted(url: str) -> None:
    request = cloudformation.parse(event(ResponseURL=url))
    assert request.response_url == url
    assert request.properties["UserName"] == "app-a"


@pytest.mark.parametrize(
    "url",
    [
        "http://cloudformation.example/answer",
        "https://attacker.example/answer",
        "https://amazonaws.com.attacker.example/answer",
        "https://s3.amazonaws.com.evil/answer",
        "http://s3.amazonaws.com/answer",
        "http://127.0.0.1:8080/answer",
        "http://localhost:8080/answer",
        "http://127.0.0.1.example.com/answer",
        "file:///etc/passwd",
        "https:///no-host",
        None,
    ],
)
def test_any_other_response_url_is_refused(url: str | None) -> None:
    # Outside the local world, 127.0.0.1 is refused too (Lambda's runtime API listens there).
    with pytest.raises(CustomResourceError, match=r"https ResponseURL on an amazonaws\.com host"):
        cloudformation.parse(event(ResponseURL=url))


def _failing_runtime(error: Exception) -> Any:  # noqa: ANN401 - stands in for app.runtime
    def runtime() -> NoReturn:
        raise error

    return runtime


@pytest.mark.parametrize(
    ("request_type", "physical_id", "answered_id"),
    [
        pytest.param("Create", None, "not-created:request-1", id="create"),
        pytest.param("Update", "app-a", "app-a", id="update-keeps-its-id"),
        pytest.param("Delete", "app-a", "app-a", id="delete-keeps-its-id"),
    ],
)
def test_a_failure_is_a_failed_answer_with_a_physical_id_cloudformation_can_delete(
    request_type: str, physical_id: str | None, answered_id: str
) -> None:
    # GIVEN a function whose configuration is bad
    request = cloudformation.parse(event(RequestType=request_type, PhysicalResourceId=physical_id))
    error = ConfigurationError("FLEET_USER_PATH must be an IAM path")
    # WHEN it serves the request / THEN the answer is FAILED with the reason
    answer = custom_resource.serve(request, _failing_runtime(error))
    assert answer.status == "FAILED"
    assert answer.reason == "FLEET_USER_PATH must be an IAM path"
    assert answer.physical_id == answered_id


def test_an_unexpected_error_is_answered_by_its_type_only() -> None:
    # GIVEN an error that is none of the function's (its text is not vetted for secrets)
    request = cloudformation.parse(event())
    answer = custom_resource.serve(request, _failing_runtime(ValueError("not-for-the-answer")))
    # THEN CloudFormation hears of it by its type, pointed at the log
    assert answer.status == "FAILED"
    assert answer.reason == "ValueError in the rotation function: see its log"
    assert "not-for-the-answer" not in str(answer.summary())
