"""Every message the app shows goes through gettext and has a Polish translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).parents[2]


def extracted_messages() -> set[str]:
    method_map, options_map = parse_mapping_cfg((ROOT / "babel.cfg").open())
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None, "MoneyError": None}
    found: set[str] = set()
    for directory in ("supporters", "templates"):
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT, method_map, options_map, keywords=keywords
        ):
            if filename.startswith(directory):
                found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_polish_translation() -> None:
    with (ROOT / "supporters/translations/pl/LC_MESSAGES/messages.po").open("rb") as handle:
        catalogue = read_po(handle)

    def done(message: object) -> bool:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)  # type: ignore[attr-defined]
        return all(strings) and not message.fuzzy  # type: ignore[attr-defined]

    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id and done(m)}
    missing = sorted(extracted_messages() - translated)
    assert not missing, f"run `make messages` and translate: {missing[:10]}"
