"""The OpenAPI document says what the API answers, and /docs works without internet."""

from __future__ import annotations

from tests.conftest import Api


def test_errors_are_problem_json_with_400_not_422(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "422" not in statuses, (method, path)
            if path.startswith("/v1/share/"):  # the link is the credential
                assert "security" not in operation
                assert {"403", "404"} <= statuses, (method, path)
            elif path.startswith("/v1/"):
                assert {"400", "401", "403", "429", "503"} <= statuses, (method, path)
                assert operation["security"] == [{"apiKey": []}]
                for status, answer in operation["responses"].items():
                    if status >= "400":
                        content = answer["content"]["application/problem+json"]
                        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            if "{" in path and path.startswith("/v1/"):
                assert "404" in statuses, (method, path)
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_tus_operations_declare_their_headers_and_statuses(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    upload = paths["/v1/tus/{upload_id}"]
    assert "204" in upload["delete"]["responses"]
    assert "204" in upload["patch"]["responses"]
    assert {"409", "412", "460"} <= set(upload["patch"]["responses"])
    names = {p["name"]: p for p in upload["patch"]["parameters"]}
    assert names["Tus-Resumable"]["required"] is True
    assert names["Upload-Offset"]["required"] is True
    assert "application/offset+octet-stream" in upload["patch"]["requestBody"]["content"]
    created = paths["/v1/tus/"]["post"]
    assert "content" not in created["responses"]["201"]  # a tus answer has no body
    assert {"Upload-Length", "Upload-Metadata", "Upload-Concat"} <= {
        p["name"] for p in created["parameters"]
    }
    assert "413" in created["responses"]


def test_docs_page_loads_its_assets_from_this_server(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    script = api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 500_000
    assert api.client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert api.client.get("/redoc").status_code == 404
