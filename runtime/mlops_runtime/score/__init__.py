"""Batch scoring: a file or folder of rows through the served model's contract check,
prediction code and prediction log, streamed in Arrow record batches (see stage.py)."""
