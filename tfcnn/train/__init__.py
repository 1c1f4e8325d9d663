"""tfcnn.train."""
