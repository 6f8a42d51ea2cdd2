"""Policies: the causal transformer, state encoders, action heads, and the LightningModules (DT, MLP BC)."""
