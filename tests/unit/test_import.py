"""Bulk import as a use case: sources, the journal, refusals, verdicts, and the summary."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, select
from typer.testing import CliRunner

from filegate.cli import app
from filegate.db import migrate
from filegate.db.engine import Database
from filegate.db.models import FileRow, ImportRow, JobRow
from filegate.db.repository import Files, Jobs
from filegate.domain import Area, InspectionPolicy
from filegate.errors import FilegateError
from filegate.services import imports
from filegate.services.imports import Failure, Importer, Summary, Tally
from filegate.services.maintenance import reconcile
from filegate.services.webhooks import create_endpoint
from tests.conftest import Api
from tests.support.samples import TEXT, png

TENANT = "tenant-a"


def write(path: Path, data: bytes = TEXT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A directory to import, apart from the test's data dir (which lives in ``tmp_path``)."""
    root = tmp_path / "in"
    root.mkdir()
    return root


def importer(api: Api, policy: InspectionPolicy | None = None) -> Importer:
    runtime = api.runtime
    chosen = policy or runtime.settings.profile(None)
    return Importer(runtime.db, runtime.storage, runtime.queue, TENANT, chosen)


def run_tally(api: Api, source: Path, policy: InspectionPolicy | None = None) -> Tally:
    return imports.import_all(importer(api, policy), imports.read_sources(source))


def run(api: Api, source: Path, policy: InspectionPolicy | None = None) -> Summary:
    """Import, run every queued job, then summarise without waiting."""
    tally = run_tally(api, source, policy)
    api.inspect()
    return imports.await_verdicts(api.runtime.db, tally, timeout=0)


def journal(api: Api) -> list[tuple[str, str, str]]:
    with api.runtime.db.session() as session:
        rows = session.execute(select(ImportRow.source, ImportRow.sha256, ImportRow.file_id))
        return sorted((r.source, r.sha256, r.file_id) for r in rows)


def file_count(api: Api) -> int:
    with api.runtime.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(FileRow)) or 0)


def quarantine(api: Api) -> list[str]:
    return list(api.runtime.storage.keys(Area.QUARANTINE))


def test_a_directory_is_imported_recursively_and_every_file_ends_clean(
    api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    for name in ("b.txt", "a.txt", "sub/c.txt", "sub/deeper/d.txt"):
        write(root / name, f"{name}\n".encode() * 3)

    summary = run(api, root)

    assert (summary.imported, summary.skipped, summary.clean) == (4, 0, 4)
    assert summary.failed == summary.rejected == ()
    assert summary.still_waiting == 0
    sources = [source for source, _, _ in journal(api)]
    assert sources == sorted(
        str(root.resolve() / n) for n in ("a.txt", "b.txt", "sub/c.txt", "sub/deeper/d.txt")
    )
    with api.runtime.db.session() as session:
        record = Files(session).get(journal(api)[0][2])
    assert record is not None
    assert (record.tenant, record.original_name, record.state) == (TENANT, "a.txt", "clean")


def test_sources_are_listed_sorted_depth_first(tmp_path: Path) -> None:
    for name in ("z.txt", "a/2.txt", "a/1.txt", "b/x/y.txt", "m.txt"):
        write(tmp_path / name)

    names = [s.path.relative_to(tmp_path).as_posix() for s in imports.read_sources(tmp_path)]

    assert names == ["m.txt", "z.txt", "a/1.txt", "a/2.txt", "b/x/y.txt"]


def test_a_csv_manifest_names_files_relative_to_itself(api: Api, tmp_path: Path) -> None:
    write(tmp_path / "data" / "one.txt", b"first file\n")
    outside = write(tmp_path / "elsewhere" / "two.txt", b"second file\n")
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.write_text(f'path,name,type\none.txt,Report 2024.txt,text/plain\n"{outside}",,\n')

    summary = run(api, manifest)

    assert (summary.imported, summary.clean) == (2, 2)
    rows = journal(api)
    assert [source for source, _, _ in rows] == sorted(
        [str((tmp_path / "data" / "one.txt").resolve()), str(outside.resolve())]
    )
    with api.runtime.db.session() as session:
        by_source = {s: Files(session).get(file_id) for s, _, file_id in rows}
    first = by_source[str((tmp_path / "data" / "one.txt").resolve())]
    second = by_source[str(outside.resolve())]
    assert first is not None
    assert second is not None
    assert (first.original_name, first.declared_type) == ("Report 2024.txt", "text/plain")
    assert (second.original_name, second.declared_type) == ("two.txt", None)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("name,type\nx.txt,text/plain\n", "'path' column"),
        ("path,filename\nx.txt,y\n", "'path' column"),
        ("path,path\nx.txt,y.txt\n", "'path' column"),
        ("path,name\nx.txt\n", "row 2: 1 fields"),
        ('path\nok.txt\n""\n', "row 3: the path is empty"),
        ('path\n"unterminated\n', "cannot read the manifest"),
    ],
)
def test_a_malformed_manifest_is_refused_before_anything_is_read(
    tmp_path: Path, text: str, complaint: str
) -> None:
    write(tmp_path / "ok.txt")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(text)

    with pytest.raises(FilegateError, match=complaint):
        imports.read_sources(manifest)


def test_a_manifest_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(b"path\n\xff\xfe.txt\n")

    with pytest.raises(FilegateError, match="cannot read the manifest"):
        imports.read_sources(manifest)


def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FilegateError, match="neither a directory nor a CSV manifest"):
        imports.read_sources(tmp_path / "nope")


def test_symlinks_and_fifos_are_refused_and_never_followed(api: Api, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret" / "key.txt", b"do not import me\n")
    root = tmp_path / "in"
    write(root / "real.txt")
    (root / "link.txt").symlink_to(secret)
    (root / "linked-dir").symlink_to(secret.parent, target_is_directory=True)
    os.mkfifo(root / "pipe")

    summary = run(api, root)

    assert (summary.imported, summary.clean) == (1, 1)
    failed = {Path(f.source).name: f.failure for f in summary.failed}
    assert failed == {
        "link.txt": Failure.NOT_REGULAR_FILE,
        "linked-dir": Failure.NOT_REGULAR_FILE,
        "pipe": Failure.NOT_REGULAR_FILE,
    }
    assert all(str(secret.parent) not in source for source, _, _ in journal(api))


def test_a_manifest_entry_that_is_a_symlink_is_refused(api: Api, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt")
    (tmp_path / "link.txt").symlink_to(secret)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\nlink.txt\n")

    summary = run(api, manifest)

    assert summary.imported == 0
    assert [(Path(f.source).name, f.failure) for f in summary.failed] == [
        ("link.txt", Failure.NOT_REGULAR_FILE)
    ]


def test_a_file_over_the_profiles_cap_fails_and_nothing_is_written(api: Api, inbox: Path) -> None:
    write(inbox / "big.txt", b"x" * 101)
    write(inbox / "small.txt", b"y" * 100)
    policy = dataclasses.replace(api.runtime.settings.profile(None), max_size=100)

    tally = run_tally(api, inbox, policy)

    assert [(Path(f.source).name, f.failure) for f in tally.failed] == [
        ("big.txt", Failure.FILE_TOO_LARGE)
    ]
    assert tally.failed[0].message == "larger than the profile allows (100 bytes)"
    assert len(tally.imported) == 1
    assert len(quarantine(api)) == 1
    assert [Path(source).name for source, _, _ in journal(api)] == ["small.txt"]


def test_rejected_files_are_reported_with_their_codes(api: Api, inbox: Path) -> None:
    write(inbox / "evil.exe", b"MZ\x90\x00 not really a program\n")
    write(inbox / "fake.png", b"this is only text\n")
    write(inbox / "real.png", png(2, 2))

    summary = run(api, inbox)

    assert (summary.imported, summary.clean) == (3, 1)
    codes = {Path(r.source).name: r.codes for r in summary.rejected}
    assert set(codes) == {"evil.exe", "fake.png"}
    assert "name_dangerous_extension" in codes["evil.exe"]
    assert "type_mismatch" in codes["fake.png"]
    counted = summary.as_dict()["rejected_codes"]
    assert isinstance(counted, dict)
    assert counted["type_mismatch"] >= 1
    assert any(line.startswith(f"  {inbox / 'evil.exe'}: ") for line in summary.lines())


def test_a_second_run_imports_nothing_new_and_says_so(api: Api, inbox: Path) -> None:
    for i in range(5):
        write(inbox / f"note-{i}.txt", f"note {i}\n".encode())
    first = run(api, inbox)
    jobs_before = _job_count(api)

    second = run(api, inbox)

    assert (first.imported, first.skipped) == (5, 0)
    assert (second.imported, second.skipped, second.clean, second.skipped_pending) == (0, 5, 0, 0)
    assert second.lines()[0] == "imported 0 new files (5 already imported)"
    assert file_count(api) == 5
    assert len(journal(api)) == 5
    assert _job_count(api) == jobs_before, "nothing is inspected again"


def test_a_changed_file_is_imported_again_as_a_new_file(api: Api, inbox: Path) -> None:
    path = write(inbox / "doc.txt", b"version one\n")
    first = run(api, inbox)
    path.write_bytes(b"version two\n")

    second = run(api, inbox)

    assert (first.imported, second.imported, second.skipped) == (1, 1, 0)
    rows = journal(api)
    assert [source for source, _, _ in rows] == [str(path.resolve())] * 2
    assert len({sha for _, sha, _ in rows}) == 2
    assert len({file_id for _, _, file_id in rows}) == 2
    assert file_count(api) == 2


def test_a_file_that_changes_between_hash_and_copy_is_not_kept(
    api: Api, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(inbox / "growing.log", b"line 1\n")
    hash_once = imports._digest

    def hash_then_append(file: object, max_size: int) -> tuple[str, int]:
        digest = hash_once(file, max_size)  # type: ignore[arg-type]
        with path.open("ab") as appender:
            appender.write(b"line 2\n")
        return digest

    monkeypatch.setattr(imports, "_digest", hash_then_append)

    tally = run_tally(api, inbox)

    assert [f.failure for f in tally.failed] == [Failure.CHANGED]
    assert quarantine(api) == []
    assert journal(api) == []
    assert file_count(api) == 0


def test_journal_file_row_and_job_commit_together_or_not_at_all(
    api: Api, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(inbox / "a.txt")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the database went away mid-transaction")

    with monkeypatch.context() as patch:
        patch.setattr(Jobs, "want", broken)
        with pytest.raises(RuntimeError, match="went away"):
            run_tally(api, inbox)

    assert (journal(api), file_count(api), quarantine(api)) == ([], 0, [])
    again = run(api, inbox)
    assert (again.imported, again.clean) == (1, 1)


def test_a_copy_whose_transaction_never_ran_is_an_orphan_that_reconcile_removes(
    api: Api, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(inbox / "a.txt")

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt  # as if SIGKILL struck between the copy and the transaction

    with monkeypatch.context() as patch:
        patch.setattr(imports, "register_upload", killed)
        with pytest.raises(KeyboardInterrupt):
            run_tally(api, inbox)
    orphans = quarantine(api)
    again = run(api, inbox)
    reconcile(api.runtime.db, api.runtime.storage, grace_seconds=0)

    assert len(orphans) == 1
    assert (again.imported, again.skipped, again.clean) == (1, 0, 1)
    stored = [*quarantine(api), *api.runtime.storage.keys(Area.CLEAN)]
    assert stored == [file_id for _, _, file_id in journal(api)]


def test_a_source_journaled_by_a_concurrent_run_is_skipped_not_doubled(
    api: Api, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(inbox / "a.txt")
    run(api, inbox)
    lookups: list[str] = []
    look_up = Importer._journaled

    def missed_once(self: Importer, key: str, sha256: str) -> str | None:
        # The first lookup runs "before the other run committed"; the second sees its row.
        lookups.append(key)
        return None if len(lookups) == 1 else look_up(self, key, sha256)

    monkeypatch.setattr(Importer, "_journaled", missed_once)

    tally = run_tally(api, inbox)

    assert (len(tally.imported), tally.skipped, len(tally.skipped_ids)) == (0, 1, 1)
    assert len(lookups) == 2
    stored = [*quarantine(api), *api.runtime.storage.keys(Area.CLEAN)]
    assert (len(journal(api)), file_count(api), len(stored)) == (1, 1, 1)


def test_the_wait_ends_at_its_timeout_and_reports_what_is_left(api: Api, inbox: Path) -> None:
    for i in range(3):
        write(inbox / f"{i}.txt", f"{i}\n".encode())
    tally = run_tally(api, inbox)
    seen: list[tuple[int, int]] = []

    waited = imports.await_verdicts(
        api.runtime.db, tally, timeout=0.3, poll=0.05, on_progress=lambda d, t: seen.append((d, t))
    )
    again = imports.await_verdicts(api.runtime.db, run_tally(api, inbox), timeout=0)

    assert (waited.imported, waited.clean, waited.still_waiting) == (3, 0, 3)
    assert seen[-1] == (0, 3)
    assert len(seen) > 1
    assert "still waiting for inspection: 3" in waited.lines()[-1]
    assert (again.imported, again.skipped, again.skipped_pending) == (0, 3, 3)
    assert again.lines()[1] == "  3 of those are still waiting for inspection"
    api.inspect()
    done = imports.await_verdicts(api.runtime.db, tally, timeout=5)
    assert (done.clean, done.still_waiting) == (3, 0)


def test_one_log_line_per_file_with_its_outcome(api: Api, inbox: Path) -> None:
    write(inbox / "a.txt")
    (inbox / "link").symlink_to(inbox / "a.txt")

    with structlog.testing.capture_logs() as logs:
        run_tally(api, inbox)
        run_tally(api, inbox)

    lines = [
        (Path(e["path"]).name, e["outcome"], e["reason"])
        for e in logs
        if e["event"] == "import.file"
    ]
    assert lines == [
        ("a.txt", "imported", None),
        ("link", "failed", "not_regular_file"),
        ("a.txt", "skipped", None),
        ("link", "failed", "not_regular_file"),
    ]
    imported = next(e for e in logs if e["event"] == "import.file")
    assert imported["file_id"]
    assert imported["size"] == len(TEXT)


def test_the_summary_counts_keep_their_names(api: Api, inbox: Path) -> None:
    write(inbox / "a.txt")
    os.mkfifo(inbox / "pipe")

    counts = run(api, inbox).as_dict()

    assert counts == {
        "imported": 1,
        "skipped": 0,
        "clean": 1,
        "rejected": 0,
        "failed": 1,
        "still_waiting": 0,
        "skipped_pending": 0,
        "rejected_codes": {},
        "failed_reasons": {"not_regular_file": 1},
    }


def _job_count(api: Api) -> int:
    with api.runtime.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(JobRow)) or 0)


# The command line: argument errors exit 2 before anything is imported.


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name in list(os.environ):
        if name.startswith("FILEGATE_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "var"
    url = f"sqlite:///{data_dir / 'filegate.db'}"
    migrate.upgrade(url)
    config, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield CliRunner(env={"FILEGATE_DATA_DIR": str(data_dir), "FILEGATE_DATABASE_URL": url})
    # The command configured logging onto the runner's stderr, closed by now.
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--profile", "nope"], "nope"),
        (["--tenant", "Not A Tenant"], "Tenant names"),
    ],
)
def test_bad_arguments_exit_2(
    cli: CliRunner, tmp_path: Path, args: list[str], complaint: str
) -> None:
    write(tmp_path / "in" / "a.txt")

    result = cli.invoke(app, ["import", str(tmp_path / "in"), "--tenant", "t1", *args])

    assert result.exit_code == 2, result.output
    assert complaint in result.stderr
    assert result.stdout == ""


def test_a_bad_source_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("name\nx\n")

    missing = cli.invoke(app, ["import", str(tmp_path / "nope"), "--tenant", "t1"])
    malformed = cli.invoke(app, ["import", str(tmp_path / "m.csv"), "--tenant", "t1"])

    assert (missing.exit_code, malformed.exit_code) == (2, 2)
    assert "neither a directory nor a CSV manifest" in missing.stderr
    assert "'path' column" in malformed.stderr


def test_a_failed_file_exits_1_with_the_counts_as_json(cli: CliRunner, inbox: Path) -> None:
    os.mkfifo(inbox / "pipe")

    result = cli.invoke(app, ["import", str(inbox), "--tenant", "t1"])

    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "imported 0 new files (0 already imported)"
    assert json.loads(lines[-1])["failed_reasons"] == {"not_regular_file": 1}


def test_the_import_leaves_webhooks_to_the_servers_workers(
    cli: CliRunner, inbox: Path, tmp_path: Path
) -> None:
    # The server allows an internal receiver; the CLI's environment does not say so. The
    # import used to deliver with its own settings: refused, logged with a traceback, retried.
    url = f"sqlite:///{tmp_path / 'var' / 'filegate.db'}"
    database = Database(url)
    try:
        create_endpoint(
            database, tenant="t1", url="http://127.0.0.1:9/hook", events=None, allow_internal=True
        )
    finally:
        database.dispose()
    write(inbox / "a.txt")

    result = cli.invoke(app, ["import", str(inbox), "--tenant", "t1", "--wait-seconds", "60"])

    assert result.exit_code == 0, result.output
    assert "target_refused" not in result.output
    assert "job.failed" not in result.output
    database = Database(url)
    try:
        with database.session() as session:
            delivers = session.scalars(select(JobRow).where(JobRow.kind == "deliver")).all()
            assert [(job.state, job.attempts) for job in delivers] == [("queued", 0)]
    finally:
        database.dispose()
