"""tfcnn.export."""
