"""Popular and trending lists, health, and the service's cross-cutting behaviour."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from bookrec.api.app import create_app
from bookrec.config import Settings


def test_popular_returns_k_books_with_titles(client: TestClient) -> None:
    response = client.get("/api/v1/recommendations/popular", params={"k": 10})
    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "popular"
    assert len(body["items"]) == 10
    assert response.headers["x-model-version"] == "1" and body["model_version"] == 1
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(item["title"] and item["reasons"] is None for item in body["items"])


def test_popular_explains_and_filters(client: TestClient) -> None:
    body = client.get(
        "/api/v1/recommendations/popular",
        params={"k": 5, "explain": "true", "year_min": 2000, "language": "eng"},
    ).json()
    assert body["items"]
    for item in body["items"]:
        assert item["reasons"] and "readers rated it" in item["reasons"][0]
        book = client.get(f"/api/v1/books/{item['book_id']}").json()
        assert book["original_publication_year"] >= 2000 and book["language_code"] in (
            "eng",
            "en-US",
            "en-GB",
            "en-CA",
        )


def test_exclude_author(client: TestClient) -> None:
    body = client.get(
        "/api/v1/recommendations/popular", params={"k": 50, "exclude_author": "J.K. Rowling"}
    ).json()
    assert all("Rowling" not in item["authors"] for item in body["items"])


def test_unknown_tag_filter_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/recommendations/popular", params={"tag": "no-such-tag"})
    assert response.status_code == 404
    assert "no-such-tag" in response.json()["detail"]


def test_trending_differs_from_all_time(client: TestClient) -> None:
    trending = client.get("/api/v1/recommendations/trending", params={"k": 20}).json()
    popular = client.get("/api/v1/recommendations/popular", params={"k": 20}).json()
    assert trending["strategy"] == "trending" and len(trending["items"]) == 20
    assert [i["book_id"] for i in trending["items"]] != [i["book_id"] for i in popular["items"]]


def test_k_is_bounded(client: TestClient) -> None:
    assert client.get("/api/v1/recommendations/popular", params={"k": 0}).status_code == 422
    assert client.get("/api/v1/recommendations/popular", params={"k": 101}).status_code == 422


def test_health_names_the_model(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == 1
    assert ready.json()["checks"]["database"]["status"] == "ok"


def test_not_ready_and_503_without_a_model(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        response = client.get("/api/v1/recommendations/popular")
        assert response.status_code == 503
        assert "bookrec train" in response.json()["detail"]


def test_request_id_and_security_headers(client: TestClient) -> None:
    response = client.get("/api/v1/books", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    generated = client.get("/api/v1/books", headers={"X-Request-ID": "bad id\n"})
    assert len(generated.headers["x-request-id"]) == 32


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_openapi_documents_the_routes(client: TestClient, tmp_path: Path) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/books",
        "/api/v1/books/{book_id}",
        "/api/v1/tags",
        "/api/v1/recommendations/popular",
        "/api/v1/recommendations/trending",
        "/health/live",
        "/health/ready",
    ):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200
