"""The Temporal engine's parts: a local Temporal dev server for development and tests."""
