"""Rollback: who serves, its history, and going back to the previous good model."""
