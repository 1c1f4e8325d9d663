"""Training: recipe -> trained model, resumable, under tf.distribute.

``fit`` (the fit loop in named steps), ``inputs`` (the datasets a recipe
trains on), ``strategy`` (distribution strategies), ``optimizers``,
``losses`` and ``metrics``, ``callbacks`` (backups, checkpoints, NaN
guard), ``summaries`` (TensorBoard), ``run_folder`` (what a run folder
holds), ``evaluate`` and ``ten_crop`` (evaluation).
"""
