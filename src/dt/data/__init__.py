"""Offline data: sources (Minari, D4RL HDF5, DQN-replay) into flat arrays, preprocessing, windows, the DataModule."""
