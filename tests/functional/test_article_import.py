"""`flask articles import DIR`: Markdown files with front matter become articles, once."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from supporters.articles.importer import slugify
from supporters.models import Article, Campaign

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples" / "articles"

GOOD = """---
title: Gas storage before winter
date: 2025-09-15
lead: Full stores are a start.
tags: [energy, gas]
---
Storage is **half** the plan.
"""


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def articles(db: Any) -> dict[str, Article]:
    db.session.expire_all()
    return {row.slug: row for row in db.session.scalars(select(Article))}


def tags_of(row: Article) -> set[str]:
    return {tag.tag for tag in row.tags}


@pytest.fixture
def general(db: Any) -> Campaign:
    campaign = Campaign(slug="general", name="General", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    return campaign


def test_import_creates_articles_from_markdown_files(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "gas.md", GOOD)

    result = cli.invoke(args=["articles", "import", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "1 created, 0 unchanged, 0 updated, 0 failed." in result.output
    row = articles(db)["gas-storage-before-winter"]
    assert row.title == "Gas storage before winter"
    assert row.published_on == date(2025, 9, 15)
    assert row.lead == "Full stores are a start."
    assert row.body_markdown == "Storage is **half** the plan."
    assert row.body_html == "<p>Storage is <strong>half</strong> the plan.</p>"
    assert tags_of(row) == {"energy", "gas"}
    assert row.published is True
    assert row.credit_notice is None and row.campaign_id is None


def test_the_example_articles_import_and_a_second_run_changes_nothing(cli: Any, db: Any, general: Campaign) -> None:
    first = cli.invoke(args=["articles", "import", str(EXAMPLES)])
    assert first.exit_code == 0, first.output
    assert "3 created, 0 unchanged, 0 updated, 0 failed." in first.output
    imported = articles(db)
    assert set(imported) == {
        "full-gas-storage-is-a-start-not-a-winter-plan",
        "fiscal-rules-that-bend-without-breaking",
        "gdansk-swinoujscie-and-the-lng-question",
    }
    fiscal = imported["fiscal-rules-that-bend-without-breaking"]
    assert fiscal.published_on == date(2025, 6, 2)
    assert tags_of(fiscal) == {"public finance", "budget", "fiscal rules"}
    assert fiscal.credit_notice and fiscal.credit_notice.startswith("This analysis may be quoted")
    assert imported["full-gas-storage-is-a-start-not-a-winter-plan"].campaign_id == general.id
    assert all(row.published and row.body_html.startswith("<p>") for row in imported.values())

    second = cli.invoke(args=["articles", "import", str(EXAMPLES)])

    assert second.exit_code == 0, second.output
    assert "0 created, 3 unchanged, 0 updated, 0 failed." in second.output
    assert db.session.scalar(select(func.count()).select_from(Article)) == 3


def test_imported_examples_are_served_as_article_pages(cli: Any, client: Any, general: Campaign) -> None:
    cli.invoke(args=["articles", "import", str(EXAMPLES)])
    page = client.get("/articles/gdansk-swinoujscie-and-the-lng-question").get_data(as_text=True)
    assert "<h1>Gdańsk, Świnoujście and the LNG question</h1>" in page
    assert "<strong>critical infrastructure</strong>" in page


def test_an_existing_slug_is_updated_in_place_and_its_tags_replaced(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "gas.md", GOOD)
    cli.invoke(args=["articles", "import", str(tmp_path)])
    original_id = articles(db)["gas-storage-before-winter"].id
    write(
        tmp_path,
        "gas.md",
        """---
title: Gas storage before winter
slug: gas-storage-before-winter
date: 2025-10-01
lead: Stores are full; delivery is the question.
tags: gas, LNG
published: false
credit: Quote us with a link.
---
Storage is *not* the whole plan.
""",
    )

    result = cli.invoke(args=["articles", "import", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "0 created, 0 unchanged, 1 updated, 0 failed." in result.output
    rows = articles(db)
    assert list(rows) == ["gas-storage-before-winter"]
    row = rows["gas-storage-before-winter"]
    assert row.id == original_id
    assert row.published_on == date(2025, 10, 1)
    assert row.lead == "Stores are full; delivery is the question."
    assert row.body_html == "<p>Storage is <em>not</em> the whole plan.</p>"
    assert tags_of(row) == {"gas", "LNG"}
    assert row.published is False
    assert row.credit_notice == "Quote us with a link."


def test_a_change_of_tags_alone_counts_as_an_update(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "gas.md", GOOD)
    cli.invoke(args=["articles", "import", str(tmp_path)])
    write(tmp_path, "gas.md", GOOD.replace("tags: [energy, gas]", "tags: [energy]"))

    result = cli.invoke(args=["articles", "import", str(tmp_path)])

    assert "1 updated" in result.output
    assert tags_of(articles(db)["gas-storage-before-winter"]) == {"energy"}


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("no-title.md", "---\ndate: 2025-01-01\n---\nText", "the front matter has no title"),
        ("no-date.md", "---\ntitle: Undated\n---\nText", "the front matter has no date"),
        (
            "bad-date.md",
            "---\ntitle: Bad date\ndate: 15.09.2025\n---\nText",
            "'15.09.2025' is not a date in the form YYYY-MM-DD",
        ),
        ("no-such-day.md", "---\ntitle: Bad day\ndate: 2025-02-30\n---\nText", "day is out of range for month"),
        (
            "campaign.md",
            "---\ntitle: Lost\ndate: 2025-01-01\ncampaign: nowhere\n---\nText",
            "there is no campaign 'nowhere'",
        ),
        ("latin2.md", "---\ntitle: Łódź\ndate: 2025-01-01\n---\n".encode("iso-8859-2"), "not UTF-8"),
        ("yaml.md", "---\ntitle: [unclosed\ndate: 2025-01-01\n---\nText", "the front matter is not valid YAML"),
        (
            "slug.md",
            "---\ntitle: Bad slug\nslug: Not A Slug\ndate: 2025-01-01\n---\nText",
            "the slug 'Not A Slug' must be",
        ),
        (
            "published.md",
            "---\ntitle: Maybe\ndate: 2025-01-01\npublished: perhaps\n---\nText",
            "published must be true or false",
        ),
        ("tags.md", "---\ntitle: Tags\ndate: 2025-01-01\ntags: {a: b}\n---\nText", "tags must be a list"),
        ("no-slug.md", "---\ntitle: ???\ndate: 2025-01-01\n---\nText", "no slug can be made from the title"),
    ],
)
def test_a_bad_file_is_reported_and_skipped_while_the_others_import(
    cli: Any, db: Any, tmp_path: Path, name: str, text: str | bytes, reason: str
) -> None:
    write(tmp_path, "good.md", GOOD)
    write(tmp_path, name, text)

    result = cli.invoke(args=["articles", "import", str(tmp_path)])

    assert result.exit_code == 1
    failure = [line for line in result.output.splitlines() if line.startswith("failed")]
    assert len(failure) == 1 and name in failure[0] and reason in failure[0], result.output
    assert "1 created, 0 unchanged, 0 updated, 1 failed." in result.output
    assert list(articles(db)) == ["gas-storage-before-winter"]


def test_two_files_claiming_one_slug_import_the_first_only(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "b.md", GOOD.replace("Full stores are a start.", "A different lead."))

    result = cli.invoke(args=["articles", "import", str(tmp_path)])

    assert result.exit_code == 1
    assert "b.md: the slug 'gas-storage-before-winter' is already used by a.md" in result.output
    assert articles(db)["gas-storage-before-winter"].lead == "Full stores are a start."


def test_only_markdown_files_directly_in_the_directory_are_read(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", GOOD)
    (tmp_path / "drafts").mkdir()
    write(tmp_path / "drafts", "draft.md", GOOD)

    result = cli.invoke(args=["articles", "import", str(tmp_path)])

    assert result.exit_code == 0
    assert "No .md files" in result.output
    assert articles(db) == {}


def test_unknown_front_matter_fields_are_warned_about_but_imported(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "gas.md", GOOD.replace("tags:", "author: Someone\ntags:"))
    result = cli.invoke(args=["articles", "import", str(tmp_path)])
    assert result.exit_code == 0
    assert "gas.md: ignored unknown front matter field(s): author" in result.output
    assert "gas-storage-before-winter" in articles(db)


def test_a_directory_that_does_not_exist_is_refused(cli: Any, tmp_path: Path) -> None:
    result = cli.invoke(args=["articles", "import", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_tags_may_be_a_comma_separated_text_and_are_deduplicated(cli: Any, db: Any, tmp_path: Path) -> None:
    write(tmp_path, "gas.md", GOOD.replace("tags: [energy, gas]", "tags: ' energy,  Gas ,gas,, baltic   states'"))
    cli.invoke(args=["articles", "import", str(tmp_path)])
    assert tags_of(articles(db)["gas-storage-before-winter"]) == {"energy", "Gas", "baltic states"}


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Gas storage before winter", "gas-storage-before-winter"),
        ("Łódź, Gdańsk i Świnoujście: żółć", "lodz-gdansk-i-swinoujscie-zolc"),
        ("  Über   straße -- 2025!  ", "uber-strasse-2025"),
        ("«Quoted» & ‘curly’ — dashes", "quoted-curly-dashes"),
        ("数字", ""),
    ],
)
def test_slugify_makes_lowercase_ascii_words_joined_by_hyphens(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slugify_keeps_slugs_within_the_column_at_a_word_boundary() -> None:
    slug = slugify("energy " * 60)
    assert len(slug) <= 200 and slug.endswith("energy")
