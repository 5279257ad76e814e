"""Training: split and fit, evaluation metrics, the model's quality gate, the reference profile, and the train stages (tracked, and plain for level 0)."""
