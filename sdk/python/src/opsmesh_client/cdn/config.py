"""Providers from configuration: ``provider_from_config(name, config)`` and
``providers_from_file(path)``.

A provider's configuration is a mapping with ``type`` (``cloudflare``, ``cloudfront``,
``fastly`` or ``generic``) and that type's keys (docs/cdn.md lists them). Credentials are
never in it: it names the environment variables that hold them (``*_env`` keys), read when
the provider is built. A key that looks like a secret itself (``api_token``, ``password``...)
is refused with a pointer to the ``*_env`` key, and so is any key the type does not know.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opsmesh_client.cdn.provider import CdnProvider, PurgeScope

MAX_CONFIG_BYTES = 1024 * 1024
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "credential")


class CdnConfigError(ValueError):
    """A provider configuration that cannot work; the message says which key and why."""


class Fields:
    """Typed reads of one provider's mapping; every error names the provider and key."""

    def __init__(self, name: str, config: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self.name = name
        self._config = config
        self._env = env
        self._read: set[str] = {"type"}

    def _fail(self, key: str, why: str) -> CdnConfigError:
        return CdnConfigError(f"cdn provider {self.name!r}: {key}: {why}")

    def _get(self, key: str, default: Any, kind: type | tuple[type, ...], required: bool) -> Any:
        self._read.add(key)
        if key not in self._config:
            if required:
                raise self._fail(key, "required")
            return default
        value = self._config[key]
        # bool is an int: a `true` where a number is meant is a mistake, not 1
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise self._fail(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value: str | None = self._get(key, default, str, required)
        if value is None:
            raise self._fail(key, "required")
        if not value.strip():
            raise self._fail(key, "must not be empty")
        return value

    def optional_string(self, key: str) -> str | None:
        value: str | None = self._get(key, None, str, False)
        if value is not None and not value.strip():
            raise self._fail(key, "must not be empty")
        return value

    def url(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.string(key, default, required=required)
        if not value.startswith(("http://", "https://")):
            raise self._fail(key, f"expected an http:// or https:// URL, got {value!r}")
        return value

    def optional_url(self, key: str) -> str | None:
        if key not in self._config:
            self._read.add(key)
            return None
        return self.url(key)

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value: int = self._get(key, default, int, False)
        if not low <= value <= high:
            raise self._fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = float(self._get(key, default, (int, float), False))
        if not low <= value <= high:
            raise self._fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value: bool = self._get(key, default, bool, False)
        return value

    def mapping(self, key: str, default: Mapping[str, str]) -> dict[str, str]:
        value = self._get(key, default, Mapping, False)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise self._fail(key, "expected a mapping of strings to strings")
        return dict(value)

    def scopes(self, key: str, default: frozenset[PurgeScope]) -> frozenset[PurgeScope]:
        value = self._get(key, None, list, False)
        if value is None:
            return default
        try:
            return frozenset(PurgeScope(v) for v in value)
        except ValueError:
            allowed = ", ".join(s.value for s in PurgeScope)
            raise self._fail(key, f"expected a list of {allowed}") from None

    def secret(self, key: str, *, required: bool) -> str | None:
        """The value of the environment variable that ``key`` names (never logged)."""
        variable = self.optional_string(key)
        if variable is None:
            if required:
                raise self._fail(
                    key, "required: the name of the environment variable that holds the credential"
                )
            return None
        value = self._env.get(variable)
        if not value:
            raise self._fail(key, f"environment variable {variable} is not set")
        return value

    def done(self) -> None:
        """Refuse keys nobody read: a typo, or a secret pasted into the configuration."""
        for key in sorted(set(self._config) - self._read):
            lowered = str(key).lower()
            if any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("_env"):
                raise self._fail(
                    str(key),
                    "credentials never go in the configuration: put it in an environment "
                    f"variable and name that variable with {key}_env",
                )
            known = ", ".join(sorted(self._read - {"type"}))
            raise self._fail(str(key), f"unknown key (this type knows: {known})")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        Mapping: "a mapping",
    }
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))


def _generic(fields: Fields) -> CdnProvider:
    from opsmesh_client.cdn.generic import (  # noqa: PLC0415
        DEFAULT_IMAGE_PARAMS,
        GenericProvider,
        GenericSettings,
    )

    method = fields.string("purge_method", "POST").upper()
    settings = GenericSettings(
        base_url=fields.url("base_url", required=True),
        purge_url=fields.url("purge_url", required=True),
        purge_method=method,
        max_per_call=fields.integer("max_per_call", 100, low=1, high=10_000),
        scopes=fields.scopes("scopes", frozenset(PurgeScope)),
        image_params=fields.mapping("image_params", DEFAULT_IMAGE_PARAMS),
        timeout_s=fields.number("timeout_s", 10.0, low=0.1, high=300.0),
    )
    token = fields.secret("token_env", required=False)
    fields.done()
    return GenericProvider(fields.name, settings, token=token)


def _cloudflare(fields: Fields) -> CdnProvider:
    from opsmesh_client.cdn.cloudflare import (  # noqa: PLC0415
        DEFAULT_API_BASE_URL,
        CloudflareProvider,
        CloudflareSettings,
    )

    settings = CloudflareSettings(
        base_url=fields.url("base_url", required=True),
        zone_id=fields.string("zone_id", required=True),
        api_base_url=fields.url("api_base_url", DEFAULT_API_BASE_URL),
        max_per_call=fields.integer("max_per_call", 100, low=1, high=500),
        timeout_s=fields.number("timeout_s", 10.0, low=0.1, high=300.0),
    )
    token = fields.secret("api_token_env", required=True)
    fields.done()
    assert token is not None  # required=True
    return CloudflareProvider(fields.name, settings, api_token=token)


def _cloudfront(fields: Fields) -> CdnProvider:
    from opsmesh_client.cdn.cloudfront import (  # noqa: PLC0415
        DEFAULT_IMAGE_PARAMS,
        MAX_PATHS_PER_INVALIDATION,
        CloudFrontProvider,
        CloudFrontSettings,
    )

    settings = CloudFrontSettings(
        base_url=fields.url("base_url", required=True),
        distribution_id=fields.string("distribution_id", required=True),
        region=fields.string("region", "us-east-1"),
        endpoint_url=fields.optional_url("endpoint_url"),
        max_per_call=fields.integer(
            "max_per_call", MAX_PATHS_PER_INVALIDATION, low=1, high=MAX_PATHS_PER_INVALIDATION
        ),
        image_params=fields.mapping("image_params", DEFAULT_IMAGE_PARAMS),
        timeout_s=fields.number("timeout_s", 10.0, low=0.1, high=300.0),
    )
    access_key = fields.secret("access_key_id_env", required=False)
    secret_key = fields.secret("secret_access_key_env", required=False)
    fields.done()
    if (access_key is None) != (secret_key is None):
        raise CdnConfigError(
            f"cdn provider {fields.name!r}: access_key_id_env and secret_access_key_env go "
            "together (or neither, for boto3's default credential chain)"
        )
    return CloudFrontProvider(
        fields.name, settings, access_key_id=access_key, secret_access_key=secret_key
    )


def _fastly(fields: Fields) -> CdnProvider:
    from opsmesh_client.cdn.fastly import (  # noqa: PLC0415
        DEFAULT_API_BASE_URL,
        MAX_KEYS_PER_CALL,
        FastlyProvider,
        FastlySettings,
    )

    settings = FastlySettings(
        base_url=fields.url("base_url", required=True),
        service_id=fields.string("service_id", required=True),
        api_base_url=fields.url("api_base_url", DEFAULT_API_BASE_URL),
        soft_purge=fields.boolean("soft_purge", False),
        max_per_call=fields.integer(
            "max_per_call", MAX_KEYS_PER_CALL, low=1, high=MAX_KEYS_PER_CALL
        ),
        timeout_s=fields.number("timeout_s", 10.0, low=0.1, high=300.0),
    )
    key = fields.secret("api_key_env", required=True)
    fields.done()
    assert key is not None  # required=True
    return FastlyProvider(fields.name, settings, api_key=key)


Builder = Callable[[Fields], CdnProvider]
_BUILDERS: dict[str, Builder] = {
    "cloudflare": _cloudflare,
    "cloudfront": _cloudfront,
    "fastly": _fastly,
    "generic": _generic,
}


def register(type_name: str, builder: Builder) -> None:
    """Add a provider type (the package's own adapters register themselves below)."""
    _BUILDERS[type_name] = builder


def provider_from_config(
    name: str, config: Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> CdnProvider:
    """The provider ``config`` describes, called ``name``. ``env`` defaults to
    ``os.environ`` (where the ``*_env`` keys' variables are read)."""
    if not isinstance(name, str) or not name.strip():
        raise CdnConfigError("a cdn provider needs a non-empty name")
    if not isinstance(config, Mapping):
        raise CdnConfigError(f"cdn provider {name!r}: expected a mapping")
    type_name = config.get("type")
    if type_name not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS))
        raise CdnConfigError(
            f"cdn provider {name!r}: type: expected one of {known}, got {type_name!r}"
        )
    return _BUILDERS[type_name](Fields(name, config, os.environ if env is None else env))


def providers_from_file(
    path: str | Path, *, env: Mapping[str, str] | None = None
) -> list[CdnProvider]:
    """Providers from a YAML or JSON file, in the file's order: either a mapping of name →
    configuration, or a list of configurations each with a ``name``."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) > MAX_CONFIG_BYTES:
        raise CdnConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    if path.suffix.lower() == ".json":
        document = json.loads(raw)
    else:
        import yaml  # noqa: PLC0415  (optional dependency: the `cdn` extra)

        document = yaml.safe_load(raw)
    if isinstance(document, Mapping) and isinstance(document.get("providers"), list | Mapping):
        document = document["providers"]
    entries: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(document, Mapping):
        for name, config in document.items():
            entries.append((str(name), config))
    elif isinstance(document, list):
        for index, config in enumerate(document):
            if not isinstance(config, Mapping) or not isinstance(config.get("name"), str):
                raise CdnConfigError(f"{path}: entry {index}: expected a mapping with a name")
            entries.append((config["name"], {k: v for k, v in config.items() if k != "name"}))
    else:
        raise CdnConfigError(f"{path}: expected a list or a mapping of providers")
    names = [name for name, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CdnConfigError(f"{path}: provider names must be unique: {', '.join(duplicates)}")
    return [provider_from_config(name, config, env=env) for name, config in entries]
