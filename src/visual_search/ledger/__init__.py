"""The asset ledger: per asset, the newest S3 event applied and what it did (see port.py)."""
