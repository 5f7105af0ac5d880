"""Article bodies: Markdown in, sanitised HTML out."""

from __future__ import annotations

import markdown
import nh3

#: what an article body may contain once rendered; everything else is stripped
ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h2",
    "h3",
    "h4",
    "blockquote",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "code",
    "pre",
    "a",
    "abbr",
    "sup",
    "sub",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "figure",
    "figcaption",
    "img",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"scope"},
}


def render_markdown(text: str) -> str:
    """Render Markdown to HTML that is safe to show: no scripts, handlers or foreign schemes."""
    html = markdown.markdown(text, extensions=["extra", "sane_lists"], output_format="html")
    # The page's title is its only <h1>: a "# Heading" in the body becomes a section heading.
    html = html.replace("<h1>", "<h2>").replace("<h1 ", "<h2 ").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
