"""The URLs of the Django app the integration test drives: an N+1 page and a failing one."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path


def posts(request: HttpRequest, limit: int) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT author_id FROM posts ORDER BY id LIMIT %s", [limit])
        names = []
        for (author_id,) in cursor.fetchall():
            cursor.execute("SELECT name FROM authors WHERE id = %s", [author_id])
            names.append(cursor.fetchone()[0])
    return JsonResponse({"authors": names})


def fail(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("on demand")


urlpatterns = [path("posts/<int:limit>/", posts), path("fail/", fail)]
