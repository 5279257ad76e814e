"""Stage 5: compare with disk, then write atomically under a manifest."""
