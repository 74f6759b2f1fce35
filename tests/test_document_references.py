"""Every document the repository points at is in the repository.

Code, READMEs and docs cite documents by path (`docs/domain.md`, `storage/README.md`, a Markdown
link `(events.md)`); someone who clones the project must be able to follow each one. A path
counts as found relative to the citing file, to the repository root, or to `services/` (the
services' READMEs are cited as `storage/README.md`)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", "test-output", "bench-output"}
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".sh", ".html", ".txt", ".json", ""}
REFERENCE = re.compile(r"(?<![\w/.-])((?:\.\./|\./)?[\w.-]+(?:/[\w.-]+)*\.md)\b")


def text_files():
    for path in ROOT.rglob("*"):
        if path == Path(__file__).resolve():
            continue  # its own examples
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in path.relative_to(ROOT).parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in ("Makefile", "Dockerfile")):
            yield path


def references(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    for number, line in enumerate(text.splitlines(), 1):
        for match in REFERENCE.finditer(line):
            if "://" in line[max(0, match.start() - 80):match.start()]:
                continue  # part of a URL: not a document of this repository
            if path.suffix == ".py" and "/" not in match.group(1) and line[match.start() - 1:match.start()] in "\"'":
                continue  # a file name in code (`ROOT / "docs" / "x.md"`), not a citation
            yield number, match.group(1)


def exists(citing: Path, reference: str) -> bool:
    return any((base / reference).exists() for base in (citing.parent, ROOT, ROOT / "services"))


def test_every_referenced_document_exists():
    missing = [f"{path.relative_to(ROOT)}:{number}: {reference}"
               for path in text_files() for number, reference in references(path)
               if not exists(path, reference)]
    assert missing == []


def test_the_documents_are_found_and_the_check_can_fail(tmp_path):
    cited = {ref for path in text_files() for _n, ref in references(path)}
    assert {"docs/architecture.md", "docs/domain.md", "docs/interface.md"} <= cited
    stray = tmp_path / "note.py"
    stray.write_text('"""See NOWHERE.md §4, and README.md."""\n')
    (tmp_path / "README.md").write_text("here\n")
    assert [ref for _n, ref in references(stray) if not exists(stray, ref)] == ["NOWHERE.md"]
