"""The widget's snippets in docs/widget.md, and the one height the card, its reserves and the
iframe snippet share (widget.js, app.css, the WordPress plugin)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

ROOT = Path(__file__).parents[2]
DOCS = (ROOT / "docs" / "widget.md").read_text()


def snippets(tag: str) -> list[str]:
    return re.findall(rf"<{tag}\b[^>]*>", DOCS)


def test_the_plain_links_page_address_is_url_encoded() -> None:
    links = [s for s in snippets("a") if "/donate/?" in s]
    assert links
    for link in links:
        href = re.search(r'href="([^"]+)"', link)
        assert href
        src = re.search(r"[?&]src=([^&]*)", href.group(1).replace("&amp;", "&"))
        assert src, link
        assert src.group(1) == quote(unquote(src.group(1)), safe=""), f"src= must be URL-encoded: {link}"


def test_the_iframe_snippets_carry_their_size_and_the_pages_address() -> None:
    frames = [s for s in snippets("iframe") if "src=" in s]
    assert frames
    for frame in frames:
        assert re.search(r'\bwidth="100%"', frame) and re.search(r'\bheight="448"', frame), frame
        query = parse_qs(urlsplit(re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")).query)  # type: ignore[union-attr]
        assert query["page"][0].startswith("https://"), frame


def test_the_card_and_every_reserve_agree_on_its_height() -> None:
    script = (ROOT / "supporters" / "widget" / "widget.js").read_text()
    css = (ROOT / "supporters" / "static" / "app.css").read_text()
    plugin = (ROOT / "supporters" / "widget" / "wordpress" / "supporters-widget" / "supporters-widget.php").read_text()
    height = re.search(r":host\{[^}]*height:(\d+)px!important", script)
    assert height
    px = height.group(1)
    assert re.search(rf"\.support-widget:not\(\[hidden\]\) \{{ display: block; height: {px}px; \}}", css)
    assert f"SUPPORTERS_WIDGET_HEIGHT = {px};" in plugin
    assert f"height: {px}px" in DOCS and f'height="{px}"' in DOCS
