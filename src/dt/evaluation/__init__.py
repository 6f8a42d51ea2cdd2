"""Target-return evaluation: the batched rollout, its spec, targets, and the training callback."""
