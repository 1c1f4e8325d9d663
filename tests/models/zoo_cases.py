"""Tiny configurations of every registered model, and data to fit them on.

Each entry shrinks a model (width, input size, classes) so that the contract
tests in ``test_zoo.py`` build and train it in a second or two, while
keeping every layer of the full-size model. Dropout is off so that the
training-mode loss is a deterministic function of the weights and a few
small steps must lower it; the family tests check the dropout layers.
``test_zoo`` fails for a registered model that has no entry here, so new
models cannot skip the contract.
"""

import keras
import numpy as np

import tfcnn.models

NUM_CLASSES = 3

TINY = {
    "lenet5": dict(input_shape=(28, 28, 3)),
    "alexnet": dict(input_shape=(67, 67, 3), width_multiplier=1 / 16,
                    fc_units=16, dropout=0.0),
    "alexnet_one_tower": dict(input_shape=(67, 67, 3),
                              width_multiplier=1 / 16, fc_units=16,
                              dropout=0.0),
    "vgg11": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                  fc_units=16, dropout=0.0),
    "vgg13": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                  fc_units=16, dropout=0.0),
    "vgg16": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                  fc_units=16, dropout=0.0, norm="batch"),
    "vgg19": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                  fc_units=16, dropout=0.0),
    "resnet18": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                     shortcut="C"),
    "resnet34": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                     shortcut="A"),
    "resnet50": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16),
    # Zero-initialised residual branches keep 33-50 untrained blocks from
    # overflowing float16 in inference mode.
    "resnet101": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                      stride_on_3x3=True, zero_init_residual=True),
    "resnet152": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                      output_stride=16, zero_init_residual=True),
    # Zero-initialised GN scales (its default, after Wu & He) would stop
    # the first step's gradient at the end of each branch.
    "resnet50_gn": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                        norm_groups=2, zero_init_residual=False),
    "googlenet": dict(input_shape=(32, 32, 3), width_multiplier=1 / 4,
                      dropout=0.0),
    "fcn32s": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                   fc_units=16, dropout=0.0, zero_init_scores=False),
    "fcn16s": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                   fc_units=16, dropout=0.0, zero_init_scores=False),
    "fcn8s": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                  fc_units=16, dropout=0.0, zero_init_scores=False),
    "fcn8s_resnet18": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                           zero_init_scores=False),
    "fcn8s_resnet50": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                           zero_init_scores=False),
    "fcn8s_small": dict(input_shape=(32, 32, 3), widths=(4, 4, 8, 8, 8)),
    "deeplabv3_resnet18": dict(input_shape=(32, 32, 3),
                               width_multiplier=1 / 16, aspp_filters=8,
                               dropout=0.0),
    "deeplabv3_resnet50": dict(input_shape=(32, 32, 3),
                               width_multiplier=1 / 16, aspp_filters=8,
                               dropout=0.0, output_stride=8),
    "deeplabv3plus": dict(input_shape=(32, 32, 3), backbone="small",
                          aspp_filters=8, decoder_filters=8, skip_filters=4,
                          dropout=0.0),
    "fcn8s_backbone": dict(input_shape=(32, 32, 3), backbone="small"),
    "dilation8": dict(input_shape=(32, 32, 3), width_multiplier=1 / 16,
                      fc_units=16, dropout=0.0),
    "cnn1d": dict(input_shape=(24, 2), width_multiplier=1 / 16),
    "textcnn": dict(input_shape=(12,), vocab_size=50, embedding_dim=8,
                    filters=4, dropout=0.0),
}

# The deepest variants differ from ResNet-50 only in blocks per stage: they
# are built and checked symbolically, not run eagerly (a tiny ResNet-152
# still has 500 layers, each a Python call per eager step).
DEEP = ("resnet101", "resnet152")

# Trained in the tests: every model except the variants of VGG and ResNet
# whose code paths a sibling (same builder, same block functions) already
# trains: resnet18 (basic blocks, batch norm, option C projections) and
# resnet50_gn (bottleneck blocks, group norm, option B) cover resnet34/50.
TRAINED = tuple(name for name in TINY
                if name not in ("vgg11", "vgg13", "vgg19", "resnet34",
                                "resnet50", "fcn8s_resnet50",
                                "deeplabv3_resnet50")
                and name not in DEEP)

# SavedModel export and strategy scope: LRN and grouped convolution; group
# norm and the zero-padding shortcut; transposed convolution; dilated
# convolution (tests/layers exports each custom layer on its own too).
PORTABLE = (
    ("alexnet", {}),
    ("resnet18", dict(norm="group", norm_groups=2, shortcut="A")),
    ("fcn8s", {}),
    ("dilation8", {}),
    ("deeplabv3_resnet18", {}),
)

DENSE = ("fcn32s", "fcn16s", "fcn8s", "fcn8s_resnet18", "fcn8s_resnet50",
         "fcn8s_small", "deeplabv3_resnet18", "deeplabv3_resnet50",
         "dilation8", "deeplabv3plus", "fcn8s_backbone")


def tiny_options(name):
    """The builder options of the tiny ``name``, with ``NUM_CLASSES``."""
    return dict(TINY[name], num_classes=NUM_CLASSES)


def tiny_batch(name, batch_size=4, seed=0):
    """A fixed random batch ``(x, y)`` for the tiny ``name``.

    Token models get int ids, image and sequence models standard normal
    floats; dense-prediction models get one label per pixel.
    """
    rng = np.random.default_rng(seed)
    shape = TINY[name]["input_shape"]
    if name == "textcnn":
        x = rng.integers(1, TINY[name]["vocab_size"], (batch_size, *shape))
        x = x.astype(np.int32)
    else:
        x = rng.standard_normal((batch_size, *shape)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, batch_size).astype(np.int32)
    if name in DENSE:
        # One class per image, at every pixel: learnable in a few steps,
        # unlike per-pixel noise.
        y = np.broadcast_to(y[:, None, None], (batch_size, *shape[:2]))
        y = np.ascontiguousarray(y)
    return x, y


def output_shape(name, batch_size):
    """The expected output shape of the tiny ``name``."""
    if name in DENSE:
        return (batch_size, *TINY[name]["input_shape"][:2], NUM_CLASSES)
    return (batch_size, NUM_CLASSES)


def build_shapes_only(name, **options):
    """Builds a registered model without computing its initial weights.

    For the full-size parameter-count tests: inside a ``StatelessScope``
    that does not initialize on exit, Keras creates every variable's shape
    but never draws the random values (138 million for VGG-16). The
    variables stay uninitialized until ``tests/conftest.py`` clears the
    session after the test, so the model is for inspection only.
    """
    with keras.StatelessScope(initialize_variables=False):
        return tfcnn.models.build(name, **options)
