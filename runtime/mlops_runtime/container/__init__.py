"""Building the serving container image through a Docker engine."""
