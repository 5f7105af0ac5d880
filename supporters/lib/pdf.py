"""HTML made into PDF (WeasyPrint), for the documents a donor downloads: receipts and
statements (donors/documents.py).

Nothing is fetched from the network, nor read from disk: the templates inline their
styles, and the URL fetcher refuses every address but a `data:` one, so a link or
image in a template (or a name a donor typed that looks like one) never makes the
server open a connection. Fonts come from the system (fontconfig): the documents ask
for "DejaVu Sans" (Debian's fonts-dejavu-core), which has every Polish letter.
WeasyPrint needs Pango (libpango-1.0-0, libpangoft2-1.0-0): see docs/operations.md.
"""

from __future__ import annotations

from typing import Any

#: the one font of every PDF, and what stands in where it is missing
FONT_FAMILY = '"DejaVu Sans", "Noto Sans", sans-serif'
#: the media type and what a PDF response says besides
MIMETYPE = "application/pdf"


def local_only_fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves `data:` URLs and refuses any other address
    (WeasyPrint then leaves that resource out); `.refused` lists what it refused."""
    from weasyprint.urls import URLFetcher

    class LocalOnly(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data",), allow_redirects=False, timeout=1)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.lower().startswith("data:"):
                self.refused.append(url)
                raise ValueError(f"a PDF fetches nothing from outside: {url[:80]}")
            return super().fetch(url, headers)

    return LocalOnly()


def render_pdf(html: str) -> bytes:
    """The PDF of a complete HTML document (styles inline, fonts from the system)."""
    # Imported here: WeasyPrint loads Pango when imported, which only these documents need.
    from weasyprint import HTML

    pdf = HTML(string=html, base_url="about:blank", url_fetcher=local_only_fetcher()).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


def pdf_headers(filename: str) -> dict[str, str]:
    """A PDF download's headers: an attachment with an ASCII file name, never cached."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "-" for ch in filename) or "document.pdf"
    return {
        "Content-Type": MIMETYPE,
        "Content-Disposition": f'attachment; filename="{safe}"',
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
