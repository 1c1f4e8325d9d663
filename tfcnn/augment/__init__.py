"""tfcnn.augment."""
