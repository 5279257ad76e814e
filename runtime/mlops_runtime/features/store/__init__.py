"""The feature store: one transformation module for both paths, Feast for storage and joins."""
