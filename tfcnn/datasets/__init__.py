"""Sample datasets embedded in installed packages, written out as image folders.

They let the quickstarts run without a download: ``digits`` writes
scikit-learn's 1,797 handwritten 8x8 digits as class folders, and
``digit_scenes`` composes them into scenes with per-pixel masks in the
images/masks layout; ``tfcnn ingest`` reads both.
"""
