"""In-test doubles of services that cannot run here (OpenSearch), strict about what they accept."""
