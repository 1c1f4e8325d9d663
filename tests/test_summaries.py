"""Tests of tfcnn.summaries: the images written to TensorBoard."""

import keras
import numpy as np
import tensorflow as tf

from tfcnn import summaries


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
