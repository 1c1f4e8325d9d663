"""``tfcnn preview``: grids of what a model sees in training.

``images`` draws a batch of augmented training images with their class
names (the command's entry point, ``write_preview``); ``segmentation``
overlays the masks of segmentation data, jointly augmented.
"""
