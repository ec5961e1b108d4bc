"""ClamAV through a real clamd: EICAR plain, zipped and inside a PDF; fail closed when down."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pikepdf
import pytest

from filegate.domain import FileState, InspectionPolicy
from filegate.inspect import antivirus
from filegate.inspect.base import SandboxRequest
from filegate.inspect.sandbox import Sandbox
from filegate.services.inspection import Inspector, inspect_job
from tests.conftest import Api
from tests.support.clamd import EICAR, SIGNATURE

UNREACHABLE = antivirus.ScannerConfig("unix:///nonexistent/clamd.sock", timeout=1)


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", data)
    return buffer.getvalue()


def pdf_with_attachment(data: bytes) -> bytes:
    # Stored uncompressed: this clamd (signatures written here, no bytecode) does not inflate
    # attachment streams. A compressed attachment is caught earlier anyway: the PDF inspector
    # rejects every embedded file (pdf_embedded_file) before the scanner runs.
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.attachments["note.txt"] = pikepdf.AttachedFileSpec(pdf, data)
    buffer = io.BytesIO()
    pdf.save(buffer, compress_streams=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(EICAR, id="plain"),
        pytest.param(zipped(EICAR), id="zipped"),
        pytest.param(pdf_with_attachment(EICAR), id="pdf-attachment"),
    ],
)
def test_eicar_is_found(tmp_path: Path, clamd: antivirus.ScannerConfig, content: bytes) -> None:
    path = tmp_path / "sample"
    path.write_bytes(content)
    (finding,) = antivirus.scan(str(path), clamd)
    assert finding.code == "malware_found"
    assert SIGNATURE in finding.message


def test_clean_file_passes(tmp_path: Path, clamd: antivirus.ScannerConfig) -> None:
    path = tmp_path / "clean.txt"
    path.write_bytes(b"nothing to see here\n")
    assert antivirus.scan(str(path), clamd) == ()
    assert antivirus.ping(clamd)


def test_unreachable_scanner_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "clean.txt"
    path.write_bytes(b"hello\n")
    (finding,) = antivirus.scan(str(path), UNREACHABLE)
    assert finding.code == "scanner_unavailable"
    assert not antivirus.ping(UNREACHABLE)


@pytest.mark.parametrize("url", ["http://clamd:3310", "tcp://", "clamd.sock"])
def test_bad_urls_are_unavailable_not_crashes(tmp_path: Path, url: str) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x")
    config = antivirus.ScannerConfig(url, timeout=1)
    assert [f.code for f in antivirus.scan(str(path), config)] == ["scanner_unavailable"]


def _inspector(api: Api, sandbox: Sandbox, scanner: antivirus.ScannerConfig) -> Inspector:
    settings = api.runtime.settings
    return Inspector(sandbox.run, settings.profile, scanner, scanner_required=True)


def test_infected_upload_is_rejected(
    api: Api, sandbox: Sandbox, clamd: antivirus.ScannerConfig
) -> None:
    file_id = api.upload(EICAR, "eicar.txt").json()["id"]
    runtime = api.runtime
    inspector = _inspector(api, sandbox, clamd)
    outcome = inspect_job(runtime.db, runtime.storage, runtime.queue, inspector, file_id)
    assert outcome == FileState.REJECTED.value
    api.inspect()  # the promote job
    record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
    assert "malware_found" in [f["code"] for f in record["findings"]]


def test_required_scanner_down_keeps_the_file_quarantined(api: Api, sandbox: Sandbox) -> None:
    file_id = api.upload(b"just text\n", "note.txt").json()["id"]
    runtime = api.runtime
    inspector = _inspector(api, sandbox, UNREACHABLE)
    outcome = inspect_job(runtime.db, runtime.storage, runtime.queue, inspector, file_id)
    assert outcome == "waiting_for_scanner"
    record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
    assert record["state"] == "quarantined"
    assert [f["code"] for f in record["findings"]] == ["scanner_unavailable"]
    content = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert content.status_code == 409


def test_policy_reaches_the_child_unchanged(tmp_path: Path, sandbox: Sandbox) -> None:
    path = tmp_path / "eicar.txt"
    path.write_bytes(EICAR)
    policy = InspectionPolicy(
        name="t", max_size=1024, extensions=frozenset({"txt"}), types=frozenset({"text/plain"})
    )
    result = sandbox.run(SandboxRequest(str(path), "eicar.txt", None, len(EICAR), policy))
    # The structural pipeline alone sees plain text; only the scanner knows better.
    assert result.verdict.state is FileState.CLEAN
