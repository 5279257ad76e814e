"""Monitoring: the prediction log's window against the champion's reference profile."""
