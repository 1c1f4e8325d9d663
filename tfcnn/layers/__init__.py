"""tfcnn.layers."""
