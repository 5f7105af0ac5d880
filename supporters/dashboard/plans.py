"""Dashboard: plans pages (routes are added by the feature's slice)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("plans", __name__, url_prefix="/plans")
