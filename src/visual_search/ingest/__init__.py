"""Keeping the index equal to the store: events, the indexing pipeline, batches, backfill, redrive."""
