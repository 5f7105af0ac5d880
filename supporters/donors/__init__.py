"""The donor's own page: signing in without a password, and the donor's gifts."""
