"""The amounts a campaign suggests, per currency: the one rule the donation form, the
widget and the campaign's dashboard page read."""

from __future__ import annotations

from supporters.lib import money
from supporters.models import Campaign

#: in whole units of the currency, when a campaign names none for it
DEFAULT_PRESETS = (10, 25, 50, 100)


def suggested_amounts(campaign: Campaign | None, currency: str) -> list[int]:
    """The campaign's suggested amounts in `currency`, in minor units; the defaults when it has none."""
    amounts = (campaign.preset_amounts or {}).get(currency) if campaign else None
    if amounts and all(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in amounts):
        return list(amounts)
    return [unit * 10 ** money.minor_unit_exponent(currency) for unit in DEFAULT_PRESETS]
