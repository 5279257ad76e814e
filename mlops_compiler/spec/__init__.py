"""Stage 2: the spec schema and its validation."""
