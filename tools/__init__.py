"""Repository maintenance scripts (not shipped in the Lambda zip)."""
