"""Serving: the ASGI app, request validation (the contract at the door), OpenAPI, micro-batching, compiled predictors, Prometheus export, the prediction log, A/B split."""
