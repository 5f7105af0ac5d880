"""Campaigns and their appeal variants, and the dashboard's campaign pages."""
