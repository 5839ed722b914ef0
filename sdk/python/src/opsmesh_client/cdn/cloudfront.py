"""AWS CloudFront through boto3 (the ``cdn-cloudfront`` extra), called in a thread.

A purge is an invalidation (``create_invalidation``) of paths: a URL becomes its path, a
prefix ``/prefix*``, everything ``/*``. CloudFront has no tags: a purge by tag is refused
as a deterministic ``PurgeError``. AWS documents at most 3,000 paths in invalidations in
progress per distribution, of which at most 15 with a wildcard; so one invalidation
carries at most ``max_per_call`` (3,000) paths, or 15 prefixes. CloudFront's
``TooManyInvalidationsInProgress`` and throttling are transient (retry later); access
denied, an unknown distribution or a bad path are not. boto3's own retries are off: the
caller retries with its own bound.

Credentials: the environment variables named by ``access_key_id_env`` and
``secret_access_key_env``, or boto3's default chain (instance role, shared config) when
neither is set.

CloudFront has no image transformation of its own; the usual setup is a CloudFront
Function or Lambda@Edge resizer (AWS's "Image Optimization" solution among them) reading
query parameters. The convention here: ``?width=&height=&quality=&format=&fit=``, names
configurable with ``image_params`` to match the resizer deployed.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opsmesh_client.cdn._common import (
    MAX_REASON_CHARS,
    batches,
    check_supported,
    is_transient_status,
    join_url,
    transform_params,
    transport_error,
    url_path,
    with_query,
)
from opsmesh_client.cdn.provider import (
    ImageTransform,
    PurgeError,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient

MAX_PATHS_PER_INVALIDATION = 3000
MAX_WILDCARD_PATHS = 15
SUPPORTED = frozenset({PurgeScope.URL, PurgeScope.PREFIX, PurgeScope.ALL})
DEFAULT_IMAGE_PARAMS: Mapping[str, str] = {
    "width": "width",
    "height": "height",
    "quality": "quality",
    "format": "format",
    "fit": "fit",
}
# Errors CloudFront answers with a 4xx that clear by themselves.
_TRANSIENT_CODES = frozenset(
    {"TooManyInvalidationsInProgress", "Throttling", "ThrottlingException", "RequestTimeout"}
)


@dataclass(frozen=True, slots=True)
class CloudFrontSettings:
    base_url: str  # the distribution's public URL (its domain or an alternate one)
    distribution_id: str
    region: str = "us-east-1"
    endpoint_url: str | None = None  # overridden by tests (moto's server)
    max_per_call: int = MAX_PATHS_PER_INVALIDATION
    image_params: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGE_PARAMS))
    timeout_s: float = 10.0


class CloudFrontProvider:
    def __init__(
        self,
        name: str,
        settings: CloudFrontSettings,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self._name = name
        self._settings = settings
        self._credentials = (access_key_id, secret_access_key)
        self._limits = PurgeLimits(max_values_per_call=settings.max_per_call, supported=SUPPORTED)
        self._client_lock = threading.Lock()
        self._client: CloudFrontClient | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> PurgeLimits:
        return self._limits

    def __repr__(self) -> str:  # never the credentials
        distribution = self._settings.distribution_id
        return f"CloudFrontProvider({self._name!r}, distribution_id={distribution!r})"

    def _cloudfront(self) -> CloudFrontClient:
        # One client per provider, made on first use (boto3 clients are thread-safe;
        # making one is not cheap).
        with self._client_lock:
            if self._client is None:
                import boto3  # noqa: PLC0415  (optional dependency: `cdn-cloudfront`)
                from botocore.config import Config  # noqa: PLC0415

                s = self._settings
                key_id, secret = self._credentials
                self._client = boto3.session.Session().client(
                    "cloudfront",
                    region_name=s.region,
                    endpoint_url=s.endpoint_url,
                    aws_access_key_id=key_id,
                    aws_secret_access_key=secret,
                    config=Config(
                        connect_timeout=s.timeout_s,
                        read_timeout=s.timeout_s,
                        retries={"total_max_attempts": 1},
                    ),
                )
            return self._client

    def paths(self, request: PurgeRequest) -> list[str]:
        """The invalidation paths ``request`` names."""
        base = self._settings.base_url
        if request.scope is PurgeScope.ALL:
            return ["/*"]
        if request.scope is PurgeScope.PREFIX:
            return [url_path(base, v).rstrip("*") + "*" for v in request.values]
        return [url_path(base, v) for v in request.values]

    async def purge(self, request: PurgeRequest) -> None:
        check_supported(self._name, SUPPORTED, request)
        size = self._settings.max_per_call
        if request.scope is PurgeScope.PREFIX:
            size = min(size, MAX_WILDCARD_PATHS)
        for chunk in batches(self.paths(request), size):
            await asyncio.to_thread(self._invalidate, chunk)

    def _invalidate(self, paths: tuple[str, ...]) -> None:
        from botocore.exceptions import (  # noqa: PLC0415
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            ParamValidationError,
        )

        try:
            self._cloudfront().create_invalidation(
                DistributionId=self._settings.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": list(paths)},
                    "CallerReference": f"opsmesh-{uuid.uuid4()}",
                },
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            transient = code in _TRANSIENT_CODES or is_transient_status(status)
            reason = f"HTTP {status} {code}: {error.get('Message', '')}"[:MAX_REASON_CHARS]
            raise PurgeError(self._name, reason, transient=transient) from exc
        except ParamValidationError as exc:  # a path CloudFront's model refuses
            raise PurgeError(self._name, str(exc)[:MAX_REASON_CHARS], transient=False) from exc
        except NoCredentialsError as exc:
            raise PurgeError(self._name, "no AWS credentials", transient=False) from exc
        except (ConnectionError, HTTPClientError) as exc:  # timeouts, refused, reset
            raise transport_error(self._name, exc) from exc

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        url = join_url(self._settings.base_url, path)
        return with_query(url, transform_params(transform, self._settings.image_params))
