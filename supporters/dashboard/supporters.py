"""Dashboard: supporters pages (routes are added by the feature's slice)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("supporters", __name__, url_prefix="/supporters")
