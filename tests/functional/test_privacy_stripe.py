"""An erasure deletes the Stripe customer: against a real localstripe, the offline
gateway's delete_customer removes it, and deleting it again is no error (a retry after
a failed erasure)."""

from __future__ import annotations

import pytest
import stripe

from supporters.payments.offline import OfflineGateway


def test_delete_customer_removes_it_from_localstripe_and_a_second_delete_is_harmless(localstripe: str) -> None:
    gateway = OfflineGateway(localstripe, "whsec_test")
    customer = gateway.client.v1.customers.create({"email": "zofia@example.org", "name": "Zofia Kwiatkowska"})

    gateway.delete_customer(customer.id)

    with pytest.raises(stripe.InvalidRequestError):
        gateway.client.v1.customers.retrieve(customer.id)
    gateway.delete_customer(customer.id)
