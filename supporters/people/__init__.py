"""Supporters: finding them, changing them, and the dashboard's supporter pages."""
