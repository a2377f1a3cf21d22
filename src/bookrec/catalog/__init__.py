"""The catalog: books, authors and tags."""
