"""Schemathesis against a live server, from its own OpenAPI document: no 5xx, and every answer
conforms to the document (status, content type, headers, body schema).

Bounded: a fixed seed and a fixed number of examples per operation, on loopback. Real ids
(a clean file, a tus upload, a webhook endpoint) are supplied so the generated requests reach
past the 404s into the handlers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.live import LiveServer, tus_create

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
EXAMPLES_PER_OPERATION = 100
SEED = 20261202
HOOK = "http://93.184.215.14/hook"


def _owned_ids(server: LiveServer, key: str) -> dict[str, str]:
    with server.client(key) as client:
        files = {"file": ("note.txt", b"fuzz target\n", "text/plain")}
        file_id = client.post("/v1/files", files=files).json()["id"]
        upload_id = tus_create(client, 100, filename="part.txt").rsplit("/", 1)[1]
        hook = client.post("/v1/webhooks", json={"url": HOOK}).json()["id"]
    return {"file_id": file_id, "upload_id": upload_id, "endpoint_id": hook}


def _config(path: Path, ids: dict[str, str]) -> Path:
    lines = []
    for name, value in ids.items():
        lines += [
            "[[operations]]",
            f'include-path-regex = "\\\\{{{name}\\\\}}"',
            f'parameters = {{ {name} = "{value}" }}',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def test_schemathesis_finds_no_5xx_and_no_schema_violation(tmp_path: Path) -> None:
    env = {
        # The fuzzer is one client sending hundreds of requests a second.
        "FILEGATE_QUOTAS__REQUESTS_PER_SECOND": "0",
        "FILEGATE_QUOTAS__UPLOADS_PER_MINUTE": "0",
        "FILEGATE_WEBHOOK_ALLOW_INTERNAL": "false",
    }
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server:
        key = server.create_key("fuzz", "upload,read,admin")
        config = _config(tmp_path / "schemathesis.toml", _owned_ids(server, key))
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "--no-color",
                "--config-file",
                str(config),
                "run",
                f"{server.base_url}/openapi.json",
                "-H",
                f"Authorization: Bearer {key}",
                "--checks",
                CHECKS,
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
                "PYTHONPATH": str(Path(__file__).parents[2]),
            },
            cwd=tmp_path,  # schemathesis keeps its cache in the working directory
            check=False,
        )
        server_errors = [e for e in server.log_events() if e.get("event") == "request.crashed"]
    output = result.stdout + result.stderr
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    print(cases.group(0) if cases else output[-3000:])
    assert result.returncode == 0, output[-6000:]
    assert cases is not None
    assert cases.group(1) == cases.group(2)
    assert server_errors == []
