"""tfcnn.blocks."""
