"""Giving: gifts and recurring plans from the donation form to the bank, and the
money figures. The donate pages, the Stripe webhook and the staff gift and plan
pages live here too."""
