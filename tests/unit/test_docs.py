"""The documentation stays true to the code: every setting is documented, every link works."""

import re
from pathlib import Path

import pytest

from moonflower.config.settings import ALL_SETTINGS, S3_KEY_ID_LEGACY

CHECKOUT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [CHECKOUT / "README.md", CHECKOUT / "BENCHMARKS.md", *(CHECKOUT / "docs").glob("*.md")]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (CHECKOUT / "docs" / "configuration.md").read_text(encoding="utf-8")
    names = [setting.env for setting in ALL_SETTINGS] + [S3_KEY_ID_LEGACY, "MOONFLOWER_CONFIG"]
    missing = [name for name in names if f"`{name}`" not in reference]
    assert missing == []


def test_every_toml_key_is_in_the_configuration_reference() -> None:
    reference = (CHECKOUT / "docs" / "configuration.md").read_text(encoding="utf-8")
    spans = set(re.findall(r"`([^`\n]+)`", FENCE.sub("", reference)))
    missing = [s.toml_name for s in ALL_SETTINGS if not {s.key, s.toml_name} & spans]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in anchors_of(linked)
        ):
            broken.append(target)
    assert broken == []


def test_the_readme_links_every_documentation_page() -> None:
    readme = (CHECKOUT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in (CHECKOUT / "docs").glob("*.md") if f"docs/{p.name}" not in readme]
    assert unlinked == []
