"""Training: timm models and self-describing checkpoints (`model`), the training run
(`train`), the state a killed run resumes from (`state`) and several processes (`parallel`)."""
