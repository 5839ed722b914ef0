"""The CloudFront adapter with boto3 against moto in server mode (a real HTTP endpoint
speaking CloudFront's REST/XML API)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from opsmesh_client.cdn import ImageTransform, PurgeError, PurgeRequest, PurgeScope
from opsmesh_client.cdn.cloudfront import CloudFrontProvider
from opsmesh_client.cdn.config import provider_from_config

ENV = {"AWS_KEY_ID": "testing-key-id", "AWS_SECRET": "testing-secret"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _cloudfront(moto_url: str):  # the test's own client, to set up and inspect
    return boto3.session.Session().client(
        "cloudfront",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id=ENV["AWS_KEY_ID"],
        aws_secret_access_key=ENV["AWS_SECRET"],
    )


@pytest.fixture
def distribution_id(moto_url: str) -> str:
    origin = {
        "Id": "origin",
        "DomainName": "origin.example.com",
        "CustomOriginConfig": {
            "HTTPPort": 80,
            "HTTPSPort": 443,
            "OriginProtocolPolicy": "https-only",
        },
    }
    made = _cloudfront(moto_url).create_distribution(
        DistributionConfig={
            "CallerReference": f"test-{id(object())}",
            "Comment": "",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "origin",
                "ViewerProtocolPolicy": "allow-all",
                "MinTTL": 0,
            },
        }
    )
    return made["Distribution"]["Id"]


def _provider(endpoint: str, distribution: str, **extra: object) -> CloudFrontProvider:
    config = {
        "type": "cloudfront",
        "base_url": "https://d111111abcdef8.cloudfront.net/static",
        "distribution_id": distribution,
        "endpoint_url": endpoint,
        "access_key_id_env": "AWS_KEY_ID",
        "secret_access_key_env": "AWS_SECRET",
        **extra,
    }
    provider = provider_from_config("cloudfront", config, env=ENV)
    assert isinstance(provider, CloudFrontProvider)
    return provider


def _invalidated(moto_url: str, distribution: str) -> list[list[str]]:
    client = _cloudfront(moto_url)
    listed = client.list_invalidations(DistributionId=distribution)["InvalidationList"]
    batches = []
    for summary in listed.get("Items", []):
        got = client.get_invalidation(DistributionId=distribution, Id=summary["Id"])
        batches.append(got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"])
    return batches


async def test_urls_prefixes_and_all_become_invalidation_paths_in_batches(
    moto_url, distribution_id
):
    provider = _provider(moto_url, distribution_id, max_per_call=2)
    await provider.purge(
        PurgeRequest(PurgeScope.URL, ("img/a.png", "img/b c.png", "https://x.example/q?v=1"))
    )
    await provider.purge(PurgeRequest(PurgeScope.PREFIX, ("css/",)))
    await provider.purge(PurgeRequest(PurgeScope.ALL))

    batches = _invalidated(moto_url, distribution_id)
    assert sorted(map(sorted, batches)) == sorted(
        [
            ["/static/img/a.png", "/static/img/b%20c.png"],
            ["/q?v=1"],
            ["/static/css/*"],
            ["/*"],
        ]
    )


async def test_prefixes_go_15_to_an_invalidation(moto_url, distribution_id):
    provider = _provider(moto_url, distribution_id)
    await provider.purge(PurgeRequest(PurgeScope.PREFIX, tuple(f"p{n}/" for n in range(20))))
    assert sorted(len(b) for b in _invalidated(moto_url, distribution_id)) == [5, 15]


async def test_tags_are_unsupported_and_an_unknown_distribution_is_deterministic(moto_url):
    provider = _provider(moto_url, "ENOSUCHDIST")
    with pytest.raises(PurgeError, match="purge by tag is not supported") as tag:
        await provider.purge(PurgeRequest(PurgeScope.TAG, ("t",)))
    assert not tag.value.transient
    with pytest.raises(PurgeError, match="NoSuchDistribution") as unknown:
        await provider.purge(PurgeRequest(PurgeScope.ALL))
    assert not unknown.value.transient
    assert ENV["AWS_SECRET"] not in str(unknown.value)


async def test_an_unreachable_endpoint_is_transient(moto_url):
    provider = _provider("http://127.0.0.1:9", "E1", timeout_s=1)
    with pytest.raises(PurgeError) as caught:
        await provider.purge(PurgeRequest(PurgeScope.ALL))
    assert caught.value.transient


def test_asset_urls_carry_the_resizers_query_parameters():
    provider = _provider("http://127.0.0.1:9", "E1", image_params={"width": "w", "quality": "q"})
    assert provider.asset_url(
        "img/logo.png", transform=ImageTransform(width=200, quality=80, format="webp")
    ) == ("https://d111111abcdef8.cloudfront.net/static/img/logo.png?w=200&q=80")
