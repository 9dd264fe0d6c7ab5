"""Evaluation: the metrics (`metrics`), the one path from a checkpoint to them (`scoring`),
cross-validation over subjects (`folds`, `fold_stats`, `compare`), other datasets'
test sets (`crossdataset`) and the pictures (`plots`)."""
