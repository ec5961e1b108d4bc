"""The API process imports no inspection parser: they load in the sandbox child, where files
are inspected; nor Alembic, which only the commands that migrate need (issue #20: the API's
peak RSS). Checked in a fresh interpreter, since this test process has imported them all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.samples import png

# What the sandbox child loads to inspect: ~30 MB of RSS together, without the Magika model
# (measured for issue #20).
INSPECTION_ONLY = (
    "magika",
    "onnxruntime",
    "numpy",
    "PIL",
    "pillow_heif",
    "pikepdf",
    "oletools",
    "lxml",
    "pyparsing",
    "msoffcrypto",
    "magic",
    "py_svg_hush",
    "av",
    "filegate.inspect._oletools",
)
# What only `filegate migrate` and the other schema commands load: about 7 MB (issue #20).
MIGRATION_ONLY = ("alembic", "mako")

# `filegate serve`, step by step (cli/server.py), then with the embedded worker on: upload each
# file, wait for its verdict and print the modules this process has loaded.
SERVE = """
import json, sys, time
from fastapi.testclient import TestClient
from filegate.cli.command import database_or_exit, settings_or_exit
from filegate.cli.runtime import build_runtime, expose_metrics, sweep_temp
from filegate.services.keys import create_key, parse_scopes
from filegate.web.app import create_app

embedded, paths = sys.argv[1] == "embedded", sys.argv[2:]
settings = settings_or_exit(check_codes=True, service=True)
database_or_exit(settings).dispose()
runtime, worker = build_runtime(settings)
sweep_temp(runtime)
expose_metrics(settings, db=runtime.db)
app = create_app(runtime, worker if embedded else None)
_, key = create_key(runtime.db, tenant="t", scopes=parse_scopes("upload,read"))
auth = {"Authorization": f"Bearer {key}"}
with TestClient(app) as client:
    for path in paths:
        name = path.rpartition("/")[2]
        with open(path, "rb") as file:
            headers = {**auth, "Content-Disposition": f'attachment; filename="{name}"'}
            created = client.post("/v1/files", content=file.read(), headers=headers)
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 90
        while client.get(created.headers["location"], headers=auth).json()["state"] == (
            "quarantined"
        ):
            assert time.monotonic() < deadline, f"no verdict for {name}"
            time.sleep(0.1)
print(json.dumps(sorted(sys.modules)))
"""

RTF = b"{\\rtf1\\ansi hello}"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def loaded_by_serve(tmp_path: Path, mode: str, files: dict[str, bytes]) -> list[str]:
    paths = []
    for name, data in files.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    env = {
        "PATH": "/usr/bin:/bin",
        "FILEGATE_DATA_DIR": str(tmp_path / "var"),
        "FILEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'filegate.db'}",
    }
    # `filegate migrate` first, in a process of its own, as an operator runs it.
    migrate = "from filegate.config import load_settings; from filegate.db import migrate; "
    migrate += "migrate.upgrade(load_settings().resolved_database_url)"
    subprocess.run([sys.executable, "-c", migrate], cwd=tmp_path, env=env, timeout=60, check=True)
    result = subprocess.run(
        [sys.executable, "-c", SERVE, mode, *map(str, paths)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    ("mode", "files"),
    [
        ("separate", {}),
        # One file per parser family; the embedded worker's sandbox child inspects them.
        ("embedded", {"photo.png": png(4, 4), "doc.pdf": PDF, "note.rtf": RTF, "icon.svg": SVG}),
    ],
)
def test_the_api_process_imports_no_inspection_parser_and_no_alembic(
    tmp_path: Path, mode: str, files: dict[str, bytes]
) -> None:
    loaded = loaded_by_serve(tmp_path, mode, files)
    assert "filegate.web.app" in loaded
    assert "filegate.inspect.pipeline" in loaded  # its code table, for profile validation
    unused = INSPECTION_ONLY + MIGRATION_ONLY
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in unused)]
    assert heavy == []


def test_the_sandbox_child_preloads_every_parser_the_api_never_imports() -> None:
    """What the API skips, the sandbox child loads before its first job (``preload``), so a
    job's clock never pays for it; a parser renamed in ``PARSERS`` fails here."""
    code = (
        "import json, sys; from filegate.inspect import pipeline; pipeline.preload(); "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert {"PIL", "pikepdf", "oletools", "magic", "py_svg_hush"} <= loaded
