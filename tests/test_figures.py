"""Tests of tfcnn.figures: the drawing shared by preview and TensorBoard."""

import numpy as np

from tfcnn import figures
from tfcnn.data import segmentation_masks


def test_filter_grid_shows_each_rgb_kernel_scaled():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(11, 11, 3, 96)).astype(np.float32)
    grid = figures.filter_grid(kernel, min_side=22)
    # 96 kernels: 10 columns x 10 rows of 22x22 tiles with 3-pixel gaps.
    assert grid.shape == (10 * 25 + 3, 10 * 25 + 3, 3)
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    first = grid[3:25:2, 3:25:2]  # the first tile, every other pixel
    expected = kernel[..., 0]
    expected = (expected - expected.min()) / (expected.max() -
                                              expected.min())
    np.testing.assert_allclose(first, expected, atol=1e-6)


def test_filter_grid_of_grey_kernels_is_their_channel_mean():
    kernel = np.zeros((5, 5, 6, 2), np.float32)
    kernel[0, 0, :, 0] = 1.0
    grid = figures.filter_grid(kernel, min_side=5)
    assert grid.shape == (11, 19, 3)
    assert grid[3, 3].tolist() == [1.0, 1.0, 1.0]
    assert grid[4, 4].tolist() == [0.0, 0.0, 0.0]


def test_grey_input_shows_rgb_kernels_in_grey():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 5, 3, 4)).astype(np.float32)
    grid = figures.filter_grid(kernel, min_side=10, grey=True)
    assert np.array_equal(grid[..., 0], grid[..., 1])
    assert np.array_equal(grid[..., 1], grid[..., 2])
    # Enlarged: 5x5 kernels drawn as 10x10 tiles.
    assert grid.shape == (2 * 13 + 3, 2 * 13 + 3, 3)


def test_confusion_image_colours_rows_by_share_with_a_scale():
    matrix = np.array([[3, 1], [0, 4]])
    image = figures.confusion_image(matrix, ["ant", "bee"], max_side=80)
    assert image.dtype == np.uint8
    # The colours of the cells are viridis of each row's shares.
    colours = figures.viridis(np.array([[0.75, 0.25], [0.0, 1.0]]))
    pixels = image.reshape(-1, 3)
    present = {tuple(p) for p in pixels}
    for colour in colours.reshape(-1, 3):
        assert tuple(colour) in present
    # Dark at 0%, yellow at 100% (the colour scale's ends).
    assert tuple(figures.viridis(np.array(1.0))) == (253, 231, 37)
    assert tuple(figures.viridis(np.array(0.0))) == (68, 1, 84)


def test_confusion_image_of_many_classes_fits_its_card():
    matrix = np.ones((1000, 1000), np.int64)
    image = figures.confusion_image(matrix)
    # TensorBoard's image card is about 340 px wide.
    assert image.shape[0] <= 340 and image.shape[1] <= 340


def test_confusion_image_of_ten_named_classes_fits_its_card():
    matrix = np.eye(10, dtype=np.int64) * 14
    names = [f"digit {i}" for i in range(10)]
    assert figures.confusion_image(matrix, names).shape[1] <= 400


def test_overlay_tints_classes_and_leaves_background():
    images = np.full((1, 2, 2, 3), 100, np.uint8)
    masks = np.array([[[0, 1], [2, 255]]])
    out = figures.overlay_masks(images, masks, alpha=0.5)
    palette = segmentation_masks.voc_palette()
    assert out[0, 0, 0].tolist() == [100, 100, 100]
    np.testing.assert_array_equal(
        out[0, 0, 1], np.round((100 + palette[1].astype(float)) / 2))
    np.testing.assert_array_equal(
        out[0, 1, 1], np.round((100 + np.array(
            segmentation_masks.VOID_COLOUR)) / 2))


def test_captioned_grid_layout():
    images = np.zeros((5, 8, 8, 3), np.uint8)
    grid = figures.captioned_grid(images, ["a"] * 5)
    # 3 columns x 2 rows of 96 px tiles (8 px enlarged 12x) with captions.
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * (96 + 14 + 2) + 2, 3 * (96 + 2) + 2, 3)




def test_segmentation_figure_titles_columns_and_names_classes():
    images = np.full((2, 8, 8, 3), 100, np.uint8)
    masks = np.zeros((2, 8, 8), np.int64)
    masks[0, :4] = 1
    masks[1, :, :2] = 255
    predicted = np.zeros((2, 8, 8), np.int64)
    predicted[:, 4:] = 2
    figure = figures.segmentation_figure(
        images, masks, predicted, ["background", "cat", "dog"])
    assert figure.dtype == np.uint8
    # Three columns of tiles enlarged to 128 px (8 px x 16), two rows,
    # a title row above and a legend below.
    assert figure.shape[1] == 3 * 128 + 4 * 4
    assert figure.shape[0] > 20 + 2 * (128 + 4)
    palette = segmentation_masks.voc_palette()
    legend = figure[20 + 2 * (128 + 4):].reshape(-1, 3)
    present = {tuple(p) for p in legend}
    # Each class shown (truth or prediction), and void, has its swatch.
    for colour in ((255, 255, 255), palette[1], palette[2],
                   segmentation_masks.VOID_COLOUR):
        assert tuple(int(v) for v in colour) in present
    titles = figure[:20]
    assert (titles < 128).any()  # the column titles' ink
    # The truth column shows class 1 blended over the image, the image
    # column the image alone.
    row = 20 + 10
    assert figure[row, 4 + 10].tolist() == [100, 100, 100]
    np.testing.assert_array_equal(
        figure[row, 4 + 128 + 4 + 10],
        np.round((100 + palette[1].astype(float)) / 2))


def test_mask_pairs_show_the_overlay_beside_the_image_with_classes():
    images = np.full((2, 4, 4, 3), 50, np.uint8)
    masks = np.zeros((2, 4, 4), np.int64)
    masks[0, 0, 0] = 2
    tiles, captions = figures.mask_pairs(images, masks, ["bg", "a", "b"])
    assert tiles.shape == (2, 4, 8, 3)
    np.testing.assert_array_equal(tiles[:, :, :4], images)
    np.testing.assert_array_equal(
        tiles[:, :, 4:], figures.overlay_masks(images, masks))
    assert captions == ["b", "bg"]
