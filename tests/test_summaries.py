"""Tests of tfcnn.summaries: the images written to TensorBoard."""

import keras
import numpy as np
import tensorflow as tf

from tfcnn import summaries


def test_filter_grid_shows_each_rgb_kernel_scaled():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(11, 11, 3, 96)).astype(np.float32)
    grid = summaries.filter_grid(kernel, min_side=22)
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
    grid = summaries.filter_grid(kernel, min_side=5)
    assert grid.shape == (11, 19, 3)
    assert grid[3, 3].tolist() == [1.0, 1.0, 1.0]
    assert grid[4, 4].tolist() == [0.0, 0.0, 0.0]


def test_grey_input_shows_rgb_kernels_in_grey():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 5, 3, 4)).astype(np.float32)
    grid = summaries.filter_grid(kernel, min_side=10, grey=True)
    assert np.array_equal(grid[..., 0], grid[..., 1])
    assert np.array_equal(grid[..., 1], grid[..., 2])
    # Enlarged: 5x5 kernels drawn as 10x10 tiles.
    assert grid.shape == (2 * 13 + 3, 2 * 13 + 3, 3)


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
    image = summaries.confusion_image(matrix)
    # TensorBoard's image card is about 340 px wide.
    assert image.shape[0] <= 340 and image.shape[1] <= 340


def test_confusion_image_of_ten_named_classes_fits_its_card():
    matrix = np.eye(10, dtype=np.int64) * 14
    names = [f"digit {i}" for i in range(10)]
    assert summaries.confusion_image(matrix, names).shape[1] <= 400


def test_step_monitor_times_every_fetch_keras_makes(tmp_path, monkeypatch):
    # StepMonitor relies on Keras calling model.train_function once a step
    # with a Python iterator of the batches (Keras 3.15's TensorFlow
    # trainer); a Keras that stops doing so fails here instead of writing
    # an input wait of zero.
    fetches = []
    timed_next = summaries._TimedIterator.__next__

    def counted_next(iterator):
        element = timed_next(iterator)
        fetches.append(iterator._monitor)
        return element

    monkeypatch.setattr(summaries._TimedIterator, "__next__", counted_next)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile("sgd", "mse")
    monitor = summaries.StepMonitor(tmp_path, batch_size=2, every_steps=1)
    data = tf.data.Dataset.from_tensors(
        (np.zeros((2, 4), np.float32), np.zeros((2, 2), np.float32)))
    model.fit(data.repeat(3), epochs=2, steps_per_epoch=3, shuffle=False,
              verbose=0, callbacks=[monitor])
    assert len(fetches) == 6 and set(fetches) == {monitor}
