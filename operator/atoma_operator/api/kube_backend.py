"""What the API needs from the apiserver: TokenReview, SubjectAccessReview, and the
resources it creates and reads. The sync client runs in threads, as in `kube.py`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kubernetes.client import (
    ApiClient,
    AuthenticationV1Api,
    AuthorizationV1Api,
    CoreV1Api,
    CustomObjectsApi,
)
from kubernetes.client.exceptions import ApiException

from atoma_operator.api.requests import PLURAL
from atoma_operator.resources.common import GROUP, VERSION


@dataclass(frozen=True)
class Caller:
    """An authenticated user, as TokenReview reports it."""

    username: str
    uid: str
    groups: tuple[str, ...]
    extra: dict[str, list[str]]


class CreateRefused(Exception):
    """The apiserver refused the resource (admission): the message says why."""


class KubeBackend:
    def __init__(self, api_client: ApiClient) -> None:
        self._authn = AuthenticationV1Api(api_client)
        self._authz = AuthorizationV1Api(api_client)
        self._custom = CustomObjectsApi(api_client)
        self._core = CoreV1Api(api_client)

    async def authenticate(self, token: str) -> Caller | None:
        """The token's user, or None when the apiserver does not accept it."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
        review: Any = await asyncio.to_thread(
            self._authn.create_token_review,
            {**body, "spec": {"token": token}},  # type: ignore[arg-type]
        )
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return Caller(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={k: list(v) for k, v in (user.extra or {}).items()},
        )

    async def allowed(self, caller: Caller, *, verb: str, resource: str, namespace: str) -> bool:
        """SubjectAccessReview: may `caller` `verb` the resource in `namespace`?"""
        review: Any = await asyncio.to_thread(
            self._authz.create_subject_access_review,
            {  # type: ignore[arg-type]
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": caller.username,
                    "uid": caller.uid,
                    "groups": list(caller.groups),
                    "extra": caller.extra,
                    "resourceAttributes": {
                        "group": GROUP,
                        "version": VERSION,
                        "resource": resource,
                        "verb": verb,
                        "namespace": namespace,
                    },
                },
            },
        )
        return bool(review.status and review.status.allowed)

    async def create(self, resource: dict[str, Any]) -> bool:
        """Create the resource; False when one of that name exists (a retried request)."""
        meta = resource["metadata"]
        try:
            await asyncio.to_thread(
                self._custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL[resource["kind"]],
                resource,
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            if exc.status in (400, 422):
                raise CreateRefused(_api_message(exc)) from None
            raise
        return True

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await asyncio.to_thread(
            self._custom.get_namespaced_custom_object,  # type: ignore[arg-type]
            GROUP,
            VERSION,
            namespace,
            PLURAL[kind],
            name,
        )
        return obj

    async def config_maps(self, namespace: str, selector: str) -> list[dict[str, str]]:
        """The data of every ConfigMap matching a label selector."""
        items: Any = await asyncio.to_thread(
            self._core.list_namespaced_config_map, namespace, label_selector=selector
        )
        return [dict(cm.data or {}) for cm in items.items]


def _api_message(exc: ApiException) -> str:
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
