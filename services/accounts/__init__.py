"""Accounts: users and their passwords, API keys, quotas, and the legacy API's caller."""
