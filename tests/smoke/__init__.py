"""Smoke tests against real services, run by hand (not collected by pytest)."""
