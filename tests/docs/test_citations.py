"""Every ``docs/<page>.md#<anchor>`` cited by the code, the configs and the docs themselves names a section that exists.

The pages give their sections stable anchors (``<a id="...">``); a renamed or deleted anchor would leave citations
pointing nowhere, which this test finds. It also checks that no file cites the reference notes outside the
repository, which a clone does not have.
"""
import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
DOCS = REPOSITORY / "docs"
SCANNED = ("common", "data_prep", "reproductions", "benchmarks", "tests", "docs")
SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".md", ".ini", ".txt"}
CITATION = re.compile(r"docs/([a-z_]+\.md)#([a-z0-9-]+)")
# Links between pages (``[text](crn.md#model)``) and within one page (``[text](#model)``).
DOCS_LINK = re.compile(r"\]\(([a-z_]+\.md)?#([a-z0-9-]+)\)")
ANCHOR = re.compile(r'<a id="([a-z0-9-]+)"></a>')
REPRODUCTION_PAGES = ("icse.md", "fqse.md", "sednn.md", "crn.md", "tfgridnet.md")
# What every reproduction page documents: the work, the model, the data, the deviations, the mini configuration, the
# record of trials.
REQUIRED_SECTIONS = ("paper", "model", "data", "deviations", "mini", "trials")


def anchors(page):
    path = DOCS / page
    if not path.is_file():
        return None
    return set(ANCHOR.findall(path.read_text(encoding="utf-8")))


def scanned_files():
    files = [REPOSITORY / "README.md"]
    for folder in SCANNED:
        files += [path for path in sorted((REPOSITORY / folder).rglob("*")) if path.suffix in SUFFIXES
                  and path.is_file() and "__pycache__" not in path.parts]
    return files


def citations():
    found = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for page, anchor in CITATION.findall(text):
            found.append((path.relative_to(REPOSITORY).as_posix(), page, anchor))
        if path.parent == DOCS:
            for page, anchor in DOCS_LINK.findall(text):
                found.append((path.relative_to(REPOSITORY).as_posix(), page or path.name, anchor))
    return found


def test_every_cited_anchor_exists():
    found = citations()
    assert len(found) > 100  # the code cites the docs throughout; far fewer means the pattern stopped matching
    missing = sorted({(source, page, anchor) for source, page, anchor in found
                      if anchors(page) is None or anchor not in anchors(page)})
    assert missing == []


@pytest.mark.parametrize("page", REPRODUCTION_PAGES)
def test_reproduction_page_has_the_required_sections(page):
    present = anchors(page)
    assert present is not None, f"docs/{page} is missing"
    assert [section for section in REQUIRED_SECTIONS if section not in present] == []


def test_anchors_are_unique_within_a_page():
    for path in sorted(DOCS.glob("*.md")):
        ids = ANCHOR.findall(path.read_text(encoding="utf-8"))
        assert len(ids) == len(set(ids)), path.name


def test_nothing_cites_the_reference_notes_outside_the_repository():
    outside = "../shared/" + "reference"
    offenders = [path.relative_to(REPOSITORY).as_posix() for path in scanned_files()
                 if outside in path.read_text(encoding="utf-8", errors="replace")]
    assert offenders == []


def test_no_tracked_file_but_a_test_refers_to_a_path_outside_the_repository():
    import subprocess

    # Tests may read ../shared (they skip naming the missing file); configs, scripts, docs and code may not.
    listed = subprocess.run(["git", "grep", "-l", "-F", "../" + "shared", "--", ".", ":!tests"], cwd=REPOSITORY,
                            capture_output=True, text=True)
    assert listed.returncode in (0, 1), listed.stderr
    assert listed.stdout.split() == []
