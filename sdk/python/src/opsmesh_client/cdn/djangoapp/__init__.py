"""The Django side of the CDN helper: add ``"opsmesh_client.cdn.djangoapp"`` to
``INSTALLED_APPS``, then ``{% load opsmesh_cdn %}{% cdn_url "img/logo.png" width=200 %}``.

Settings: ``OPSMESH_CDN_CONFIG`` (the CDN file, read at start-up when set; otherwise call
``opsmesh_client.cdn.configure`` yourself) and ``OPSMESH_CDN_REGION_HEADERS`` (the request
headers that carry the client's country, first present wins; default CloudFront's, then
Cloudflare's, then Fastly's).
"""
