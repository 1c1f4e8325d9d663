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


def test_grey_input_shows_rgb_kernels_in_grey():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 5, 3, 4)).astype(np.float32)
    grid = summaries.filter_grid(kernel, min_side=10, grey=True)
    assert np.array_equal(grid[..., 0], grid[..., 1])
    assert np.array_equal(grid[..., 1], grid[..., 2])
    # Enlarged: 5x5 kernels drawn as 10x10 tiles.
    assert grid.shape == (2 * 11 + 1, 2 * 11 + 1, 3)


def test_confusion_image_colours_rows_by_share_with_a_scale():
    matrix = np.array([[3, 1], [0, 4]])
    image = summaries.confusion_image(matrix, ["ant", "bee"], max_side=80)
    assert image.dtype == np.float32 and image.min() >= 0
    # The colours of the cells are viridis of each row's shares.
    colours = summaries._viridis(np.array([[0.75, 0.25], [0.0, 1.0]]))
    pixels = np.round(image * 255).astype(np.uint8).reshape(-1, 3)
    present = {tuple(p) for p in pixels}
    for colour in colours.reshape(-1, 3):
        assert tuple(colour) in present
    # Dark at 0%, yellow at 100% (the colour scale's ends).
    assert tuple(summaries._viridis(np.array(1.0))) == (253, 231, 37)
    assert tuple(summaries._viridis(np.array(0.0))) == (68, 1, 84)


def test_confusion_image_of_many_classes_fits_its_card():
    matrix = np.ones((1000, 1000), np.int64)
    image = summaries.confusion_image(matrix, max_side=480)
    assert image.shape[0] < 600 and image.shape[1] < 600
