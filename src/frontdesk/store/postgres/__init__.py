"""The PostgreSQL side of the store: local PostgreSQL clusters for development and tests."""
