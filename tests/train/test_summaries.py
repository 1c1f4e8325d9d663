"""Tests of tfcnn.train.summaries: the images written to TensorBoard."""

import numpy as np

from tfcnn.train import summaries


def test_filter_grid_shows_each_rgb_kernel_scaled():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(11, 11, 3, 96)).astype(np.float32)
    grid = summaries.filter_grid(kernel, min_side=22)
    # 96 kernels: 10 columns x 10 rows of 22x22 tiles with 1-pixel gaps.
    assert grid.shape == (10 * 23 + 1, 10 * 23 + 1, 3)
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    first = grid[1:23:2, 1:23:2]  # the first tile, every other pixel
    expected = kernel[..., 0]
    expected = (expected - expected.min()) / (expected.max() -
                                              expected.min())
    np.testing.assert_allclose(first, expected, atol=1e-6)


def test_filter_grid_of_grey_kernels_is_their_channel_mean():
    kernel = np.zeros((5, 5, 6, 2), np.float32)
    kernel[0, 0, :, 0] = 1.0
    grid = summaries.filter_grid(kernel, min_side=5)
    assert grid.shape == (7, 13, 3)
    assert grid[1, 1].tolist() == [1.0, 1.0, 1.0]
    assert grid[2, 2].tolist() == [0.0, 0.0, 0.0]


def test_confusion_image_normalizes_rows():
    matrix = np.array([[3, 1], [0, 4]])
    image = summaries.confusion_image(matrix, min_side=4)
    assert image.shape == (4, 4, 3)
    np.testing.assert_allclose(image[0, 0], 0.75)
    np.testing.assert_allclose(image[0, 2], 0.25)
    np.testing.assert_allclose(image[2, 2], 1.0)
