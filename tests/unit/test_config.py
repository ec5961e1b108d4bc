"""Settings: built-in defaults, filegate.toml, FILEGATE_* variables, and `check-config`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from filegate.cli import app
from filegate.config import builtin_profiles, load_settings
from filegate.errors import ErrorCode, FilegateError
from tests.support.seaweed import S3Server, s3_settings
from tests.support.services import without_filegate_env

# A profile with every required field, to build files from.
PNG_PROFILE = 'extensions = ["png"]\ntypes = ["image/png"]\n'


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no FILEGATE_* variables: nothing leaks in from outside."""
    return without_filegate_env(monkeypatch, tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check_config(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, [*args, "check-config"])
    return result.exit_code, result.output.splitlines()


def problem_at(lines: list[str], location: str) -> str:
    """The one reported problem at ``location``; fails, listing them all, when there is none."""
    found = [line for line in lines if line.startswith(f"{location}: ")]
    assert len(found) == 1, f"expected one problem at {location!r} in {lines}"
    return found[0]


def test_defaults_keep_everything_under_the_data_dir() -> None:
    settings = load_settings()

    assert settings.data_dir == Path("var")
    assert settings.resolved_database_url == "sqlite:///" + str(Path("var") / "filegate.db")
    assert settings.resolved_storage_dir == Path("var") / "storage"
    assert settings.port == 8000
    assert settings.default_profile == "default"
    assert set(settings.profiles) == {"default", "images", "documents", "media"}


def test_the_database_follows_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FILEGATE_DATA_DIR", str(tmp_path / "elsewhere"))

    settings = load_settings()

    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'filegate.db'}"


def test_filegate_toml_is_read(workdir: Path) -> None:
    write(
        workdir / "filegate.toml",
        f'port = 9000\nlog_level = "debug"\ndefault_profile = "avatars"\n'
        f"[profiles.avatars]\n{PNG_PROFILE}",
    )

    settings = load_settings()

    assert (settings.port, settings.log_level) == (9000, "debug")
    assert set(settings.profiles) == {"avatars"}, "a file's profiles replace the built-in ones"


def test_environment_wins_over_the_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(workdir / "filegate.toml", 'port = 9000\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("FILEGATE_PORT", "9100")

    settings = load_settings()

    assert settings.port == 9100
    assert settings.host == "0.0.0.0", (
        "settings the environment leaves alone still come from the file"
    )


def test_filegate_config_names_the_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(workdir / "filegate.toml", "port = 9000\n")
    chosen = write(workdir / "conf" / "other.toml", "port = 9200\n")
    monkeypatch.setenv("FILEGATE_CONFIG", str(chosen))

    assert load_settings().port == 9200


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ('"5MiB"', 5 * 1024 * 1024),
        ('"5MB"', 5_000_000),
        ('"1 GiB"', 1024**3),
        ('"512KiB"', 512 * 1024),
        ("1024", 1024),
    ],
)
def test_byte_sizes_parse(workdir: Path, text: str, size: int) -> None:
    write(
        workdir / "filegate.toml",
        f'default_profile = "p"\n[profiles.p]\n{PNG_PROFILE}max_size = {text}\n',
    )

    assert load_settings().profile("p").max_size == size


def test_profile_none_is_the_default_profile() -> None:
    settings = load_settings(default_profile="images")

    assert settings.profile(None).name == "images"
    assert settings.profile(None).types == settings.profile("images").types


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(FilegateError) as caught:
        load_settings().profile("nope")

    assert caught.value.code is ErrorCode.UNKNOWN_PROFILE
    assert "default" in caught.value.message, "the message lists the known profiles"


def test_check_config_accepts_a_good_file(workdir: Path) -> None:
    write(workdir / "filegate.toml", f"port = 9000\n[profiles.default]\n{PNG_PROFILE}")

    code, lines = check_config()

    assert (code, lines) == (0, ["configuration is valid"])


def test_check_config_reports_every_field_problem_with_its_location(workdir: Path) -> None:
    write(
        workdir / "filegate.toml",
        "surprise = 1\n"
        f"[profiles.huge]\n{PNG_PROFILE}max_size = -5\n"
        '[profiles.default]\nextensions = ["png"]\ntypes = ["images"]\n',
    )

    code, lines = check_config()

    assert code == 1
    assert len(lines) == 3, lines
    assert problem_at(lines, "filegate.toml: surprise")
    assert problem_at(lines, "filegate.toml: profiles.huge.max_size")
    assert "images" in problem_at(lines, "filegate.toml: profiles.default.types")


def test_check_config_reports_a_misspelt_finding_code(workdir: Path) -> None:
    # It used to pass: the misspelt code did nothing, and type_mismatch kept rejecting.
    actions = 'actions = { type_missmatch = "accept", pdf_link = "reject" }\n'
    write(workdir / "filegate.toml", f"[profiles.default]\n{PNG_PROFILE}{actions}")

    code, lines = check_config()

    assert code == 1
    assert lines == [
        "filegate.toml: profiles.default.actions.type_missmatch: no finding has the code "
        "'type_missmatch' (the codes: docs/inspection.md)"
    ]


def test_check_config_reports_a_missing_default_profile(workdir: Path) -> None:
    write(workdir / "filegate.toml", 'default_profile = "nope"\n')

    code, lines = check_config()

    assert code == 1
    assert len(lines) == 1, lines
    assert "'nope'" in problem_at(lines, "filegate.toml: default_profile")


def test_check_config_reports_field_and_semantic_problems_together(workdir: Path) -> None:
    write(
        workdir / "filegate.toml",
        f'surprise = 1\ndefault_profile = "nope"\n[profiles.default]\n{PNG_PROFILE}',
    )

    code, lines = check_config()

    assert code == 1
    assert problem_at(lines, "filegate.toml: surprise")
    assert problem_at(lines, "filegate.toml: default_profile")


def test_check_config_gives_the_line_and_column_of_a_toml_error(workdir: Path) -> None:
    write(workdir / "broken.toml", 'port = 9000\nhost = "unterminated\n')

    code, lines = check_config("--config", "broken.toml")

    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("broken.toml: not valid TOML")
    assert "line 2, column" in lines[0]


def test_check_config_reports_a_missing_file() -> None:
    code, lines = check_config("--config", "missing.toml")

    assert (code, lines) == (1, ["missing.toml: config file not found"])


def test_a_missing_file_named_by_filegate_config_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FILEGATE_CONFIG", "gone.toml")

    with pytest.raises(FilegateError) as caught:
        load_settings()

    assert caught.value.code is ErrorCode.CONFIG_INVALID
    assert [str(p) for p in caught.value.extra["problems"]] == ["gone.toml: config file not found"]  # type: ignore[attr-defined]


def test_a_bad_variable_is_reported_against_the_environment_not_the_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        workdir / "filegate.toml", 'port = 9000\nclamd_url = "nope"\n[quotas]\nstored_files = -1\n'
    )
    monkeypatch.setenv("FILEGATE_PORT", "abc")
    monkeypatch.setenv("FILEGATE_QUOTAS__UPLOADS_PER_MINUTE", "-2")

    with pytest.raises(FilegateError) as caught:
        load_settings()

    where = sorted(str(p).split(": ")[0] for p in caught.value.extra["problems"])  # type: ignore[attr-defined]
    assert where == [
        "$FILEGATE_PORT",
        "$FILEGATE_QUOTAS__UPLOADS_PER_MINUTE",
        "filegate.toml",
        "filegate.toml",
    ]


def test_the_example_file_is_valid_and_a_superset_of_the_built_in_profiles(
    workdir: Path,
) -> None:
    example = Path(__file__).parents[2] / "filegate.example.toml"

    settings = load_settings(example)

    for name, profile in builtin_profiles().items():
        assert settings.profiles[name] == profile, name
    assert set(settings.profiles) > set(builtin_profiles())


def test_s3_storage_is_a_url_and_its_credentials_stay_out_of_the_file(workdir: Path) -> None:
    write(
        workdir / "filegate.toml",
        'storage_url = "s3://uploads/filegate"\ns3_addressing_style = "path"\n',
    )
    settings = load_settings()
    assert (settings.storage_url, settings.s3_addressing_style) == (
        "s3://uploads/filegate",
        "path",
    )

    write(workdir / "filegate.toml", 'storage_url = "s3://UP"\n')
    code, lines = check_config()
    assert code == 1
    assert "use s3://bucket or s3://bucket/prefix" in problem_at(
        lines, "filegate.toml: storage_url"
    )

    write(
        workdir / "filegate.toml",
        'storage_url = "s3://uploads"\naws_secret_access_key = "wJalr..."\n',
    )
    code, lines = check_config()
    assert code == 1
    found = problem_at(lines, "filegate.toml: aws_secret_access_key")
    assert "credentials do not belong in the config file" in found
    assert "wJalr" not in "\n".join(lines)  # the secret itself is never echoed

    write(workdir / "filegate.toml", "download_redirect = true\n")
    code, lines = check_config()
    assert code == 1
    assert "need S3 storage" in problem_at(lines, "filegate.toml: download_redirect")


def test_check_services_writes_to_the_bucket_it_names(
    workdir: Path, s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_settings(s3_server, s3_bucket, monkeypatch).items():
        monkeypatch.setenv(f"FILEGATE_{name.upper()}", value)
    (workdir / "var").mkdir()
    result = CliRunner().invoke(app, ["check-config", "--check-services"])
    assert result.exit_code == 0, result.output
    assert "configuration is valid" in result.output

    monkeypatch.setenv("FILEGATE_STORAGE_URL", "s3://no-such-bucket-for-filegate")
    result = CliRunner().invoke(app, ["check-config", "--check-services"])
    assert result.exit_code == 1
    assert "storage_url: the S3 bucket is not writable (NoSuchBucket)" in result.output

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("FILEGATE_STORAGE_URL", f"s3://{s3_bucket}")
    result = CliRunner().invoke(app, ["check-config", "--check-services"])
    assert result.exit_code == 1
    assert "storage_url: the S3 bucket is not writable (SignatureDoesNotMatch)" in result.output
