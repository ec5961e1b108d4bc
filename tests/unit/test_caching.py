"""Cache rules: examples checked by check-config, `filegate cache explain`, and no answer to a
request with credentials that a shared cache may keep, on any route of the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from filegate import caching
from filegate.cli import app
from filegate.config import builtin_rules
from filegate.domain import Scope
from filegate.services.keys import create_key
from tests.conftest import Api
from tests.support.services import without_filegate_env

WRONG_EXAMPLE = """
[cache.rules.images]
match = { routes = ["share"], types = ["image/*"] }
cache_control = "public, max-age=60"
cached = [{ request = "GET {share}", type = "image/png" }]
# Wrong on purpose: an inline PNG matches the rule like any other PNG, so it is cached.
not_cached = [{ request = "GET {share}", type = "image/png", disposition = "inline" }]
"""


def test_the_built_in_examples_hold() -> None:
    assert caching.example_problems(builtin_rules()) == []
    assert sum(len(r.cached) + len(r.not_cached) for r in builtin_rules().values()) >= 9


def test_check_config_runs_the_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    without_filegate_env(monkeypatch, tmp_path)
    (tmp_path / "filegate.toml").write_text(WRONG_EXAMPLE)
    result = CliRunner().invoke(app, ["check-config"])
    assert result.exit_code == 1, result.output
    assert "filegate.toml: cache.rules.images.not_cached[0]" in result.output
    assert "GET {share} is cached (rule images: public, max-age=60)" in result.output
    fixed = WRONG_EXAMPLE.replace(
        'type = "image/png", disposition', 'type = "application/pdf", disposition'
    )
    (tmp_path / "filegate.toml").write_text(fixed)
    result = CliRunner().invoke(app, ["check-config"])
    assert result.exit_code == 0, result.output


def test_explain_names_the_rule_the_skipped_ones_and_the_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FILEGATE_DATA_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(
        app,
        [
            "cache",
            "explain",
            "GET",
            "/v1/files/01HZZZZZZZZZZZZZZZZZZZZZZZ/content",
            "-H",
            "Authorization: Bearer x",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "GET /v1/files/01HZZZZZZZZZZZZZZZZZZZZZZZ/content (route content, file clean, type -)",
        "  skip  share-link: route content is not share",
        "  match api: matched",
        "  shared caches: must not store it",
        "  Cache-Control: private, no-store",
    ]
    result = CliRunner().invoke(
        app,
        [
            "cache",
            "explain",
            "GET",
            "/v1/share/01HZZZZZZZZZZZZZZZZZZZZZZZ/00?e=4102444800",
            "--limited",
        ],
    )
    assert (
        "  bypass share-link: bypassed by a link limited to a number of downloads" in result.output
    )


def test_no_answer_to_credentials_is_ever_kept_by_a_shared_cache(api: Api) -> None:
    """Every operation of the OpenAPI document, asked with a key that may do it (and with one
    that may not), answers private, no-store: success, redirect or problem."""
    file_id: str = api.upload(b"a note\n", "note.txt").json()["id"]
    api.inspect()
    admin = create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset(Scope))[1]
    document = api.client.get("/openapi.json").json()
    asked = 0
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", file_id, path)
        for method in operations:
            for key in (admin, api.keys["a-upload"]):
                answer = api.client.request(
                    method.upper(), concrete, headers={"Authorization": f"Bearer {key}"}
                )
                control = answer.headers.get("cache-control", "")
                said = (method, path, answer.status_code, control)
                assert "private" in control or "no-store" in control, said
                assert "public" not in control
                assert "s-maxage" not in control
                asked += 1
    assert asked >= 2 * 20
