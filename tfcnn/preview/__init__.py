"""``tfcnn preview``: grids of what a model sees in training.

``grid`` is the command's entry point (``write_preview``) and lays out the
tiles the data's task draws: ``classification`` (augmented images with
their class names) or ``segmentation`` (jointly augmented images beside
their masks).
"""
