"""Sample datasets embedded in installed packages, written out as image folders.

They let the quickstarts run without a download: ``digits`` writes
scikit-learn's 1,797 handwritten 8x8 digits as class folders that
``tfcnn ingest`` reads.
"""
