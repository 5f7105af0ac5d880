"""What the dashboard's tests share: a person of each role, signed in, and a payments
gateway that stands in for Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests import factories
from tests.fakes import FakeGateway


def signed_in_as(client: Any, role: str) -> Any:
    user = factories.staff(role)
    assert factories.sign_in(client, user).status_code == 303
    return user


@pytest.fixture
def admin(client: Any, db: Any) -> Any:
    return signed_in_as(client, "admin")


@pytest.fixture
def fundraiser(client: Any, db: Any) -> Any:
    """May view, write and export, but not manage staff."""
    return signed_in_as(client, "fundraiser")


@pytest.fixture
def viewer(client: Any, db: Any) -> Any:
    return signed_in_as(client, "viewer")


@pytest.fixture
def gateway(app: Flask) -> Iterator[FakeGateway]:
    """The app's gateway swapped for a FakeGateway (tests/fakes.py) for one test."""
    fake = FakeGateway()
    real = app.extensions["payments"]
    app.extensions["payments"] = fake
    try:
        yield fake
    finally:
        app.extensions["payments"] = real
