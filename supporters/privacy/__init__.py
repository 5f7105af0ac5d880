"""Privacy requests (GDPR Art. 15-17, 20): the access export, erasure and its retention,
the request log (docs/privacy.md)."""
