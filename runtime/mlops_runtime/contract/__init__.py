"""The data contract: one definition of its rules (`rules`), and the checkers derived from it:
the training gate (pandera), the per-record check, and the serving door's request validation."""
