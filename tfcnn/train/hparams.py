"""A run's hyperparameters for TensorBoard's HParams dashboard.

``RunHParams`` writes, once per run, the keys that make its result
(``tfcnn.compare.recipe_hparams``: learning rate, model, crop size, ...)
with TensorBoard's HParams plugin (``tensorboard.plugins.hparams.api``:
``hp.hparams``) and the whole resolved recipe as text, into the run's
``logs`` folder. That folder is the HParams "session"; its ``train`` and
``validation`` runs hold Keras' ``epoch_*`` scalars, which the dashboard
shows as each session's metrics (their last values: the final epoch's).
Point TensorBoard at a folder of run folders and its HParams tab lists
every run with its keys and final metrics side by side.

No experiment summary (``hp.hparams_config``) is written: TensorBoard
reads the first one it finds as the whole experiment's, which under a
shared log root would be one run's view of it, and without one the
dashboard works out the keys from every run and shows first those whose
values differ between them (``HParamInfo.differs``).
"""

import keras


class RunHParams(keras.callbacks.Callback):
    """Logs the recipe's hyperparameters and text at the start of training.

    Args:
        log_dir: str or Path, the run's ``logs`` folder (the session).
        recipe: ``tfcnn.recipe.Recipe``, resolved.
    """

    def __init__(self, log_dir, recipe):
        super().__init__()
        from tfcnn import compare

        self.log_dir = str(log_dir)
        self.recipe = recipe
        self.hparams = compare.recipe_hparams(recipe)
        self._written = False

    def on_train_begin(self, logs=None):
        if self._written:
            return  # a later fit call of the same run (a stage, a resume)
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        from tfcnn import recipe as recipe_lib

        writer = tf.summary.create_file_writer(self.log_dir)
        step = int(self.model.optimizer.iterations.numpy())
        with writer.as_default(step=step):
            hp.hparams(self.hparams, trial_id=self.recipe.train.model_dir)
            # Markdown: indented lines show as a code block.
            toml = recipe_lib.dump_toml(self.recipe)
            tf.summary.text(
                "recipe",
                "\n".join("    " + line for line in toml.splitlines()),
                description="The resolved recipe of this run "
                            "(recipe.toml in the run folder).")
        writer.flush()
        writer.close()
        self._written = True
