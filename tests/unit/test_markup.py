"""Article bodies: Markdown becomes HTML that is safe to show as it is."""

from __future__ import annotations

import pytest

from supporters.articles.markup import render_markdown


@pytest.mark.parametrize(
    ("markdown", "forbidden"),
    [
        ("Hello <script>alert('x')</script> there", ["<script", "alert("]),
        ('<p onclick="steal()">Click</p>', ["onclick", "steal()"]),
        ('<img src="https://example.org/a.png" onerror="steal()">', ["onerror", "steal()"]),
        ("[link](javascript:alert(1))", ["javascript:"]),
        ('<a href="javascript:alert(1)">link</a>', ["javascript:"]),
        ('<a href="JaVaScRiPt:alert(1)">link</a>', ["javascript:", "JaVaScRiPt:"]),
        ('<a href="data:text/html,<script>x</script>">link</a>', ["data:", "<script"]),
        ('<p style="position:fixed;top:0">Overlay</p>', ["style=", "position:fixed"]),
        ('<iframe src="https://example.org/"></iframe>', ["<iframe", "example.org"]),
        ('<object data="x.swf"></object><embed src="x.swf">', ["<object", "<embed"]),
        ("<style>body { display: none }</style>", ["<style", "display: none"]),
        ('<form action="https://example.org/"><input name="card"></form>', ["<form", "<input"]),
    ],
)
def test_dangerous_markup_is_removed(markdown: str, forbidden: list[str]) -> None:
    html = render_markdown(markdown)
    for fragment in forbidden:
        assert fragment not in html


def test_headings_lists_and_emphasis_stay() -> None:
    html = render_markdown("## Section\n\n### Part\n\n- one\n- two\n\n1. first\n2. second\n\n*soft* and **strong**\n")
    assert "<h2>Section</h2>" in html and "<h3>Part</h3>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n<li>second</li>\n</ol>" in html
    assert "<em>soft</em>" in html and "<strong>strong</strong>" in html


def test_links_stay_and_open_without_handing_over_the_page() -> None:
    html = render_markdown("Read [the report](https://example.org/report) or [write](mailto:desk@example.org).")
    assert '<a href="https://example.org/report" rel="noopener noreferrer">the report</a>' in html
    assert 'href="mailto:desk@example.org"' in html


def test_tables_stay() -> None:
    html = render_markdown("| year | budget |\n|---|---|\n| 2024 | 1.9% |\n")
    assert "<table>" in html and "<th>year</th>" in html and "<td>1.9%</td>" in html


def test_images_from_listed_hosts_stay_and_others_lose_their_source() -> None:
    html = render_markdown(
        "![A chart](https://images.example.org/chart.png) ![Inline](data:image/png;base64,AAAA)",
        allowed_image_hosts={"images.example.org"},
    )
    assert '<img alt="A chart" src="https://images.example.org/chart.png">' in html
    assert "data:image" not in html


def test_an_image_from_any_other_host_is_not_fetched_and_keeps_its_alt_text() -> None:
    """A staff member's tracking pixel: every reader's browser would report to its host."""
    html = render_markdown(
        '![Chart](https://tracker.example/p.gif?reader=1) <img src="https://tracker.example/q.gif" alt="Q">',
        allowed_image_hosts={"images.example.org"},
    )
    assert "tracker.example" not in html
    assert '<img alt="Chart">' in html and '<img alt="Q">' in html


def test_images_on_our_own_origin_stay() -> None:
    html = render_markdown("![Logo](/static/logo.svg) ![Map](maps/2024.png)", allowed_image_hosts=set())
    assert 'src="/static/logo.svg"' in html and 'src="maps/2024.png"' in html


@pytest.mark.parametrize(
    "src",
    [
        "//tracker.example/p.gif",
        "/\\tracker.example/p.gif",
        "\\\\tracker.example/p.gif",
        "ht&#9;tps://tracker.example/p.gif",
        "https:tracker.example/p.gif",
        "https://images.example.org@tracker.example/p.gif",
        "https://tracker.example\\@images.example.org/p.gif",
        "https://images.example.org.tracker.example/p.gif",
        "https://tracker.example/images.example.org/p.gif",
        "ftp://images.example.org/p.gif",
        "https://[::1/p.gif",
    ],
)
def test_addresses_a_browser_reads_as_another_host_lose_their_source(src: str) -> None:
    html = render_markdown(f'<img src="{src}" alt="x">', allowed_image_hosts={"images.example.org"})
    assert html == '<p><img alt="x"></p>', html


def test_the_hosts_come_from_the_settings_and_the_public_url(tmp_path: object) -> None:
    from flask import Flask

    app = Flask(__name__)
    app.config.update(SUPPORTERS_PUBLIC_URL="https://support.example.org", SUPPORTERS_IMAGE_HOSTS=["cdn.example.net"])
    text = "![a](https://support.example.org/static/a.png) ![b](https://cdn.example.net/b.png) ![c](https://x.example/c.png)"
    with app.app_context():
        html = render_markdown(text)
    assert 'src="https://support.example.org/static/a.png"' in html and 'src="https://cdn.example.net/b.png"' in html
    assert "x.example" not in html


def test_plain_text_is_escaped_not_interpreted() -> None:
    html = render_markdown("Use `<b>` for bold; 3 < 4 & 5 > 2.")
    assert "<code>&lt;b&gt;</code>" in html
    assert "3 &lt; 4 &amp; 5 &gt; 2" in html
