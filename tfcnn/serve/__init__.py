"""tfcnn.serve."""
