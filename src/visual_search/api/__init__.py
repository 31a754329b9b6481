"""The wire contract: Cloudinary-compatible routes, request parsing, auth, responses and errors."""
