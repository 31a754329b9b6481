"""Image stores: where the original files live (a local folder on one machine, S3 on AWS)."""
