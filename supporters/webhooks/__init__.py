"""Stripe webhooks: verify, record once, hand to the rules of giving."""
