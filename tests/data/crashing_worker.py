"""Test fixture: a worker function that kills its process on one item."""

import os


def double_or_die(chunk):
    """Doubles each item; the item "die" ends the process like a segfault."""
    if "die" in chunk:
        os._exit(3)
    return [item * 2 for item in chunk]
