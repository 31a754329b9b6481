"""Defaults that both a setting (`settings.py`) and the code it configures need, written once here
(this module imports nothing, so the lowest layers may read it)."""

DEFAULT_MAX_RESULTS = 50  # hits per search page when the request gives no max_results
# What one OpenSearch operation may take, retries included, so the search Lambda answers within API
# Gateway's 29 s with our own error rather than a gateway timeout.
DEFAULT_BUDGET_S = 20.0
