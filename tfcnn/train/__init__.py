"""Training: recipe -> trained model, resumable, under tf.distribute (or
``keras.distribution`` under JAX).

``fit`` (the fit loop in named steps), ``inputs`` (the datasets a recipe
trains on), ``backend`` (``train.backend``: which Keras backend trains),
``strategy`` and ``cluster`` (distribution strategies, the
cluster of a multi-worker run), ``optimizers``, ``callbacks`` (backups,
checkpoints, NaN guard), ``freeze`` (which layers train), ``hparams``
(TensorBoard's HParams dashboard) and ``evaluate``. The losses, metrics,
summaries and 10-crop evaluation they share with the tasks are
``tfcnn.losses``, ``tfcnn.metrics``, ``tfcnn.summaries`` and
``tfcnn.ten_crop``; what a run folder holds is ``tfcnn.run_folder``.
"""
