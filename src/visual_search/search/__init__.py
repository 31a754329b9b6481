"""The query use case: search, its cursor, duplicates and the image_url fetcher."""
