"""Article bodies: Markdown in, sanitised HTML out.

Images are shown only from our own origin (a relative address, or the public URL's
host) and the hosts in SUPPORTERS_IMAGE_HOSTS. Any other image loses its address and
keeps its alt text: an image is a request the reader's browser makes, and one from
anywhere tells its host who read the article and when (a tracking pixel). The page's
Content-Security-Policy (`img-src`) holds the same list, for HTML written before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import markdown
import nh3
from flask import current_app, has_app_context

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


#: what browsers drop from anywhere in an address (WHATWG URL: tab and line breaks)
_IGNORED_IN_URLS = re.compile("[\t\n\r]")
#: and from either end (C0 controls and space)
_URL_ENDS = "".join(chr(code) for code in range(0x21))


def image_hosts() -> set[str]:
    """The hosts article images may come from: ours (the public URL's) and the configured ones."""
    if not has_app_context():
        return set()
    ours = urlsplit(str(current_app.config.get("SUPPORTERS_PUBLIC_URL") or "")).hostname
    return {*current_app.config.get("SUPPORTERS_IMAGE_HOSTS", []), *([ours] if ours else [])}


def image_allowed(src: str, hosts: Iterable[str]) -> bool:
    """Whether the browser would fetch `src` from our origin or one of `hosts`.

    Read the way a browser reads it: tabs and line breaks dropped, backslashes as
    slashes (so `/\\evil.example/x.png` is the other host it is to a browser).
    """
    address = _IGNORED_IN_URLS.sub("", src).strip(_URL_ENDS).replace("\\", "/")
    try:
        parts = urlsplit(address)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        return False
    if not parts.scheme and not address.startswith("//"):
        return True  # a path on our own origin
    if parts.scheme and parts.scheme.lower() not in {"http", "https"}:
        return False
    return host is not None and host in set(hosts)


def _only_allowed_images(hosts: set[str]) -> Callable[[str, str, str], str | None]:
    def attribute_filter(element: str, attribute: str, value: str) -> str | None:
        if element == "img" and attribute == "src" and not image_allowed(value, hosts):
            return None
        return value

    return attribute_filter


def render_markdown(text: str, allowed_image_hosts: Iterable[str] | None = None) -> str:
    """Render Markdown to HTML that is safe to show: no scripts, handlers or foreign schemes,
    images only from our origin and `allowed_image_hosts` (default: `image_hosts()`)."""
    html = markdown.markdown(text, extensions=["extra", "sane_lists"], output_format="html")
    # The page's title is its only <h1>: a "# Heading" in the body becomes a section heading.
    html = html.replace("<h1>", "<h2>").replace("<h1 ", "<h2 ").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        attribute_filter=_only_allowed_images(
            image_hosts() if allowed_image_hosts is None else set(allowed_image_hosts)
        ),
    )
