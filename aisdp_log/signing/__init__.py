"""Sign-offs of reviews: canonical row hashes, the Sign-off sheet, SSH signatures and their
verification."""
