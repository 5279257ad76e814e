"""The feature pipeline: one transformation, fitted in training and reused in serving."""
