"""Watch a function that serves many apps: no call of one app's rotation may touch another app.

A thread declares whose rotation it runs (:meth:`Trespass.rotating`); every call its attached
clients make meanwhile is checked at botocore's ``before-parameter-build`` event, where the API
parameters are plain (``UserName``, ``SecretId``): a call naming another user or secret, or an
IAM call on access keys that names no user (and so acts on the caller's own), is recorded in
:attr:`Trespass.problems`. IAM acts on a key only of the user a call names, so checking the user
is checking the key. No AWS call of its own.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

# IAM calls that act on the caller's own user when they name none.
USER_SCOPED: Final = frozenset(
    {
        "CreateAccessKey",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "ListAccessKeys",
        "TagUser",
        "UntagUser",
    }
)


@dataclass(frozen=True)
class _Owner:
    name: str
    user: str
    secrets: Collection[str]


@dataclass
class Trespass:
    """Records every call that names another app's user or secret than the thread's app."""

    problems: list[str] = field(default_factory=list)
    checked: int = 0
    _current: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def rotating(self, name: str, *, user: str, secrets: Collection[str]) -> Iterator[None]:
        """Attribute this thread's calls in the block to app ``name`` (its user and secret ids)."""
        self._current.owner = _Owner(name=name, user=user, secrets=secrets)
        try:
            yield
        finally:
            self._current.owner = None

    def before_parameter_build(
        self,
        model: Any = None,  # noqa: ANN401 - botocore's OperationModel
        params: Any = None,  # noqa: ANN401 - the call's parameters
        **_: Any,  # noqa: ANN401 - botocore hook
    ) -> None:
        """Record a call that names another app's user or secret, or acts on no named user."""
        owner: _Owner | None = getattr(self._current, "owner", None)
        if owner is None or not isinstance(params, dict):
            return
        operation = getattr(model, "name", "?")
        problem = None
        secret = params.get("SecretId")
        if secret is not None and secret not in owner.secrets:
            problem = f"{owner.name}'s rotation called {operation} on secret {secret}"
        user = params.get("UserName")
        if user is not None and user != owner.user:
            problem = f"{owner.name}'s rotation called {operation} on user {user}"
        if user is None and operation in USER_SCOPED:
            problem = f"{owner.name}'s rotation called {operation} without naming a user"
        with self._lock:
            self.checked += 1
            if problem:
                self.problems.append(problem)

    def attach(self, client: Any) -> None:  # noqa: ANN401 - a boto3 client
        """Check ``client``'s calls from now on."""
        client.meta.events.register(
            "before-parameter-build", self.before_parameter_build, unique_id=f"trespass-{id(self)}"
        )

    def detach(self, client: Any) -> None:  # noqa: ANN401 - a boto3 client
        """Stop checking ``client``'s calls."""
        client.meta.events.unregister("before-parameter-build", unique_id=f"trespass-{id(self)}")
