"""Files written by real software, through the real sandbox and the built-in default profile.

Every file in ``tests/realworld/files`` was copied byte for byte from a published package (see
``tests/realworld/SOURCES.tsv`` and its README). Generated samples never show what LibreOffice,
Word, pdfTeX, phone cameras or audio encoders actually write; these do, and each must be clean.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageSequence

from filegate.config import builtin_profiles
from filegate.domain import FileState, Finding, SanitizeMode, SanitizeRules
from filegate.inspect.base import Inspection, SandboxRequest
from filegate.inspect.sandbox import Sandbox

CORPUS = Path(__file__).parent.parent / "realworld"
FILES = sorted(path for path in (CORPUS / "files").rglob("*") if path.is_file())
DEFAULT = builtin_profiles()["default"].policy("default")


def sources() -> list[dict[str, str]]:
    with (CORPUS / "SOURCES.tsv").open(newline="", encoding="utf-8") as table:
        return list(csv.DictReader(table, delimiter="\t"))


def explain(findings: tuple[Finding, ...]) -> str:
    return "; ".join(f"{f.code}: {f.message}" for f in findings) or "no findings"


def inspect(sandbox: Sandbox, path: Path, scratch: Path) -> Inspection:
    job = SandboxRequest(
        str(path),
        path.name,
        None,
        path.stat().st_size,
        DEFAULT,
        sanitized_path=str(scratch / "sanitized"),
    )
    return sandbox.run(job)


def test_the_corpus_is_large_varied_and_accounted_for() -> None:
    rows = sources()
    listed = [row["path"] for row in rows]
    assert sorted(listed) == sorted(str(path.relative_to(CORPUS)) for path in FILES)
    assert len(FILES) >= 300
    producers = {row["producer"] for row in rows if not row["producer"].startswith("unknown")}
    assert len(producers) >= 20
    assert all(row["licence"].strip() and row["source"].strip() for row in rows)
    assert sum(path.stat().st_size for path in FILES) < 32 * 1024 * 1024


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS / "files")) for p in FILES])
def test_real_files_are_clean(sandbox: Sandbox, tmp_path: Path, path: Path) -> None:
    result = inspect(sandbox, path, tmp_path)
    assert result.verdict.state is FileState.CLEAN, explain(result.verdict.findings)


def test_every_kind_the_default_profile_accepts_is_covered(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    kinds = Counter(path.parent.name for path in FILES)
    wanted = {"pdf", "office", "odf", "legacy-office", "rtf", "jpeg", "png", "gif", "webp"}
    wanted |= {"tiff", "bmp", "ico", "heic", "avif", "text", "audio", "video", "archives"}
    assert wanted <= set(kinds), sorted(wanted - set(kinds))


# --- regression samples, one real file per false-positive class --------------------------------


def real(name: str) -> Path:
    (found,) = [path for path in FILES if path.name == name]
    return found


@pytest.mark.parametrize(
    ("name", "what"),
    [
        # LibreOffice writes Configurations2/accelerator/current.xml empty in every file.
        ("serious_poem.odt", "an empty XML part"),
        # Finder's __MACOSX/._*.xml resource forks inside a re-zipped workbook.
        ("skip_empty_lines.xlsx", "AppleDouble parts"),
        # The workbook's type is declared by a Default, its zip lists [Content_Types].xml last.
        ("input-weird.xlsx", "main part type from _rels/.rels"),
        # pikepdf lists some indirect numbers as Python ints; the walk crashed on them (27 PDFs).
        ("beamerlogo.pdf", "a bare number among the indirect objects"),
        # MPO with zero padding between its pictures.
        ("frozenpond.jpg", "padding between MPO pictures"),
        # 20 KB of NUL after %%EOF.
        ("selenium-pypdf-issue-177.pdf", "padding after %%EOF"),
        # A README quoting Python, which libmagic calls a script.
        ("python-readme.md", "Markdown that quotes code"),
    ],
)
def test_false_positive_classes_stay_fixed(
    sandbox: Sandbox, tmp_path: Path, name: str, what: str
) -> None:
    result = inspect(sandbox, real(name), tmp_path)
    assert result.verdict.state is FileState.CLEAN, f"{what}: {explain(result.verdict.findings)}"


def test_a_display_p3_photo_keeps_its_colour_profile(sandbox: Sandbox, tmp_path: Path) -> None:
    path = real("frame_size.jpg")  # an MPO from an iPhone 14 Pro Max
    with Image.open(path) as original:
        assert description(original) == "Display P3"
    result = inspect(sandbox, path, tmp_path)
    assert result.verdict.state is FileState.CLEAN
    assert "ICC colour profile kept" in result.changes  # its EXIF makes a copy needed
    with Image.open(tmp_path / "sanitized") as copy:
        assert description(copy) == "Display P3"
        assert "exif" not in copy.info


def description(image: Image.Image) -> str:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
    return str(ImageCms.getProfileDescription(profile)).strip()


@pytest.mark.parametrize("name", ["chi.gif", "iss634.webp", "apng-delay.png"])
def test_a_real_animation_stays_animated_when_re_encoded(
    sandbox: Sandbox, tmp_path: Path, name: str
) -> None:
    path = real(name)
    always = dataclasses.replace(DEFAULT, sanitize=SanitizeRules.every(SanitizeMode.ALWAYS))
    job = SandboxRequest(
        str(path), name, None, path.stat().st_size, always, str(tmp_path / "sanitized")
    )
    result = sandbox.run(job)
    assert result.verdict.state is FileState.CLEAN, explain(result.verdict.findings)
    with Image.open(path) as original, Image.open(tmp_path / "sanitized") as copy:
        # Pillow's GIF writer merges identical neighbouring frames into one longer frame: the
        # same animation, so what must match is that it moves, and for as long.
        assert copy.n_frames > 1
        assert play_time(copy) == play_time(original)


def play_time(image: Image.Image) -> int:
    total = 0
    for frame in ImageSequence.Iterator(image):
        total += int(frame.info.get("duration", 0))
    return total
