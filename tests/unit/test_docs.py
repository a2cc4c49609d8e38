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


DEPLOYMENT_FILES = sorted(
    [
        *(path for path in (CHECKOUT / "config").rglob("*") if path.is_file()),
        CHECKOUT / "compose.yaml",
        CHECKOUT / "Dockerfile",
    ]
)
DOC_POINTER = re.compile(r"(?<![\w/.])(docs/[\w.-]+\.md|README\.md)(?:#([\w-]+))?")
SECTION_NAMED = re.compile(r'README\.md(?:,| \()\s*"([^"]+)"')
INSTALLED_DOC = re.compile(r"file:///opt/moonflower/(\S+)")


def comments_of(path: Path) -> str:
    """What a person reads in the file: its comments, and systemd's Documentation= lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if "#" in line or line.startswith("Documentation="))


@pytest.mark.parametrize("path", DEPLOYMENT_FILES, ids=lambda path: path.name)
def test_pointers_in_deployment_files_lead_somewhere(path: Path) -> None:
    text = comments_of(path)
    broken = []
    for target, anchor in DOC_POINTER.findall(text):
        linked = CHECKOUT / target
        if not linked.exists() or (anchor and anchor not in anchors_of(linked)):
            broken.append(f"{target}#{anchor}" if anchor else target)
    readme = (CHECKOUT / "README.md").read_text(encoding="utf-8")
    headings = [heading.lower() for heading in HEADING.findall(readme)]
    for section in SECTION_NAMED.findall(text):
        if not any(section.lower() in heading for heading in headings):
            broken.append(f'README.md "{section}"')
    for installed in INSTALLED_DOC.findall(text):
        if not (CHECKOUT / installed).exists():
            broken.append(installed)
    assert broken == []


def test_the_recovery_window_example_is_written_as_list_writes_it() -> None:
    import pendulum

    from moonflower.cli.tables import window_text

    real = window_text(
        pendulum.datetime(2026, 11, 20, 1, 0, 3, 114000), pendulum.datetime(2026, 11, 26, 14)
    )
    shape = re.sub(r"\d", r"\\d", re.escape(real))
    pitr = (CHECKOUT / "docs" / "pitr.md").read_text(encoding="utf-8")
    assert re.search(shape, pitr), real


def test_the_readme_example_of_two_clusters_loads(tmp_path: Path) -> None:
    from moonflower.config.loader import load_config

    readme = (CHECKOUT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Several PostgreSQL servers") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```\n\n")]
    secret = tmp_path / "pg_password"
    secret.write_text("readme-example-password\n")
    path = tmp_path / "moonflower.toml"
    path.write_text(example.replace("/run/secrets/pg_password", str(secret)))
    config = load_config({"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "readme-s3-secret"}, path)
    production, side = config.clusters
    assert production.s3.prefix == "nightly/production"
    assert production.postgres.databases == ("*",)
    assert side.s3.prefix == "nightly/side-project"
    assert side.s3.retention.daily == 7
