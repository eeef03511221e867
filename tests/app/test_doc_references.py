"""Docs stand alone: every ``§`` reference in the code and docs this repository's service floors own names a
file in docs/ and a section heading that exists there (docs/operations.md §3). A reference without a file
inherits the file named earlier on the same line; inside a doc, a bare reference means that doc."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCOPES = ["service", "alembic", "docs", "bench", "tests/api", "tests/domain", "tests/app", "tests/migrations", "tests/support",
          "README.md"]
REF = re.compile(r"(?:((?:docs/)?[a-z-]+\.md) )?§ ?(\d+(?:\.\d+)*)")


def _sections(doc: Path) -> set[str]:
    headings = re.findall(r"^#+ (\d+(?:\.\d+)*)[.\s]", doc.read_text(), flags=re.MULTILINE)
    return set(headings)


def _sources() -> list[Path]:
    files: list[Path] = []
    for scope in SCOPES:
        path = ROOT / scope
        candidates = [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.md")]
        files += candidates
    return sorted(files)


def test_every_section_reference_resolves_inside_the_repository() -> None:
    problems: list[str] = []
    checked = 0
    for source in _sources():
        rel = source.relative_to(ROOT).as_posix()
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            current = rel if rel.startswith("docs/") else None
            for match in REF.finditer(line):
                named, section = match.groups()
                if named is not None:
                    current = named if named.startswith("docs/") else f"docs/{named}"
                where = f"{rel}:{number}"
                if current is None:
                    problems.append(f"{where}: §{section} names no document")
                    continue
                doc = ROOT / current
                if not doc.is_file():
                    problems.append(f"{where}: {current} is not in the repository")
                elif section not in _sections(doc):
                    problems.append(f"{where}: {current} has no section {section}")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 100  # the check looked at the references, not at nothing


def test_readme_layout_matches_the_tree() -> None:
    """Every module and package directly under service/ is in the README's layout, and every path the
    layout names exists."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    block = layout[layout.index("```") + 3 : layout.index("```", layout.index("```") + 3)]
    named = set(re.findall(r"^\s*([a-z_]+(?:\.py|/))", block, flags=re.MULTILINE))
    service = ROOT / "service"
    present = {p.name + "/" for p in service.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.name for p in service.glob("*.py") if p.name != "__init__.py"}
    assert present - named == set(), "in service/ but not in the README layout"
    for package in ("assign", "strategic_config", "domain", "domain/allocator"):
        for module in (service / package).glob("*.py"):
            if module.name != "__init__.py":
                assert module.name in block, f"service/{package}/{module.name} missing from the README layout"
