"""What exists and under which name: identity, names, uploads, listings, renditions, writes."""
