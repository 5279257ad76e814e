"""`mlops demo`: the whole loop on an embedded default, one line per step.

build → train v1 → serve → traffic → late labels → a worse v2 → monitor → alert → automatic
rollback → the world shifts → retraining → history and lineage. Every step runs the generated
project's own stages as a user would; this package only drives them and prints what happened.
Nothing here imports scikit-learn, pandas or MLflow: the stages run in their own processes.
"""
