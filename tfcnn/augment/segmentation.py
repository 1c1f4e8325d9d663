"""Joint on-device augmentation of images and their segmentation masks.

``RandomScaleCropFlip`` draws, per image, a scale, a crop window (which
pads where the scaled image is smaller than the crop) and a horizontal
flip, and applies that one geometric transform to the image and to its
mask in a single resampling each (batched gathers compiled by XLA): the
image bilinearly, padded with the mean colour, the mask by nearest
neighbour, padded with the ignore value (255, VOC's "void"), so a mask
pixel is always a source class id or void (DeepLab's training
augmentation, Chen et al. 2017).

Inputs follow Keras' convention for image preprocessing layers: a dict
``{"images": [B, H, W, 3], "segmentation_masks": [B, H, W] or
[B, H, W, 1]}`` (or the images alone), returned as the same dict.
Keras' own photometric layers (``keras.layers.RandomBrightness``,
``RandomContrast``, ``RandomColorJitter``, ...) take the same dict and
leave the masks untouched, so they compose with this one
(``build_segmentation_augmentation``).

Why not Keras' geometric layers: ``keras.layers.RandomCrop`` draws one
window per batch, has no padding, and resizes masks bilinearly whenever
the input is smaller than the crop; ``RandomZoom`` pads by reflection,
which invents mask pixels; and under ``MirroredStrategy`` every replica of
a Keras random layer draws the same numbers (``tfcnn.augment.seeding``).
"""

import keras
import numpy as np
from keras import ops

from tfcnn.augment import device_ops
from tfcnn.augment import seeding
from tfcnn.label_values import IGNORE_VALUE
from tfcnn.preprocessing_modes import CropMode

IMAGES = "images"
# Windows are pulled this far (in input pixels) inside their ends, so that
# float rounding never puts a sample point on the image's first or last
# pixel centre just outside the image (where it would count as padding).
# Far below what changes a nearest neighbour or a rounded bilinear value.
_INSIDE = 1e-3
MASKS = "segmentation_masks"


@keras.saving.register_keras_serializable(package="tfcnn")
class RandomScaleCropFlip(keras.layers.Layer):
    """Random scale, padded crop and flip, drawn once for image and mask.

    In training, for each image: a scale ``s`` uniform in ``scale_range``
    (the image is seen as ``s*H x s*W``), a ``crop_size`` window at a
    uniform integer offset in that scaled image (where the scaled image is
    smaller than the window, the image lands at a uniform place inside it
    and the rest is padding), and a left-right flip with probability
    ``flip_rate``. Image pixels are sampled bilinearly (or as
    ``interpolation`` says) and padding takes ``mean``; mask pixels are
    sampled by nearest neighbour only and padding is ``ignore_value``.
    At inference the layer returns its inputs unchanged (segmentation
    models score whole images).

    Each output keeps its input's dtype (uint8 images stay uint8, rounded),
    and each replica draws its own transforms.

    Args:
        crop_size: int, side of the square output in training.
        scale_range: pair of floats ``(low, high)``, ``0 < low <= high``.
            Defaults to ``(0.5, 2.0)`` (DeepLab's range).
        flip_rate: float in [0, 1], probability of a horizontal flip.
            Defaults to 0.5.
        mean: float or sequence of 3 floats, the padding colour of images
            in pixel units. Defaults to 0.
        ignore_value: int, the padding value of masks. Defaults to 255.
        interpolation: ``"bilinear"`` or ``"nearest"``, how image pixels
            are sampled (masks are always nearest). Defaults to
            ``"bilinear"``.
        seed: int or None. Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: dict with ``"images"`` ``[B, H, W, C]`` and optionally
            ``"segmentation_masks"`` ``[B, H, W]`` or ``[B, H, W, 1]``
            (same H and W), or an image tensor.
        training: bool. Defaults to False.

    Output shape:
        In training ``[B, crop_size, crop_size, ...]`` for each input;
        otherwise the inputs' shapes.

    Example:
    >>> layer = RandomScaleCropFlip(64, mean=(124, 116, 104))
    >>> out = layer({"images": images, "segmentation_masks": masks},
    ...             training=True)
    """

    def __init__(self, crop_size, scale_range=(0.5, 2.0), flip_rate=0.5,
                 mean=0.0, ignore_value=IGNORE_VALUE,
                 interpolation="bilinear", seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(crop_size, int) or crop_size <= 0:
            raise ValueError(
                f"crop_size must be a positive int. Received: "
                f"crop_size={crop_size!r}")
        low, high = (float(v) for v in scale_range)
        if not 0.0 < low <= high:
            raise ValueError(
                "scale_range must be (low, high) with 0 < low <= high. "
                f"Received: scale_range={scale_range!r}")
        if not 0.0 <= flip_rate <= 1.0:
            raise ValueError(
                f"flip_rate must be in [0, 1]. Received: "
                f"flip_rate={flip_rate!r}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                "interpolation must be 'bilinear' or 'nearest'. Received: "
                f"interpolation={interpolation!r}")
        self.crop_size = crop_size
        self.scale_range = (low, high)
        self.flip_rate = float(flip_rate)
        self.mean = np.broadcast_to(np.asarray(mean, "float64"),
                                    (3,)).tolist()
        self.ignore_value = int(ignore_value)
        self.interpolation = interpolation
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=False):
        if not training:
            return inputs
        data = inputs if isinstance(inputs, dict) else {IMAGES: inputs}
        images = ops.convert_to_tensor(data[IMAGES])
        masks = (ops.convert_to_tensor(data[MASKS]) if MASKS in data
                 else ops.zeros_like(images[..., 0]))
        squeeze = len(masks.shape) == 3
        warped_images, warped_masks = _sample(
            images, masks if squeeze else masks[..., 0],
            self._windows(ops.shape(images)), size=self.crop_size,
            bilinear=self.interpolation == "bilinear",
            mean=tuple(self.mean), ignore_value=self.ignore_value)
        out = dict(data)
        out[IMAGES] = warped_images
        if MASKS in data:
            out[MASKS] = (warped_masks if squeeze
                          else warped_masks[..., None])
        return out if isinstance(inputs, dict) else out[IMAGES]

    def _windows(self, shape):
        """``[B, 4]`` sampling windows ``(y1, x1, y2, x2)`` in input pixels.

        The image scaled by ``s`` spans ``(H - 1) * s`` between its first
        and last pixel centres; window pixel ``i`` at offset ``top`` reads
        input index ``(top + i) / s``, so row ``i`` of the output samples
        ``y1 + i * (y2 - y1) / (C - 1)``; a flip reads the columns right to
        left (``x1 > x2``). Sample points outside ``[0, H - 1]`` are
        padding.
        """
        batch = shape[0]
        height = ops.cast(shape[1], "float32")
        width = ops.cast(shape[2], "float32")
        size = float(self.crop_size)
        uniform = seeding.uniform(self.seed_generator, (batch, 4))
        low, high = self.scale_range
        scale = low + (high - low) * uniform[:, 0]
        top = _offset((height - 1.0) * scale + 1.0, size, uniform[:, 1])
        left = _offset((width - 1.0) * scale + 1.0, size, uniform[:, 2])
        step = 1.0 / scale
        span = (size - 1.0) * step - 2.0 * _INSIDE
        y1 = top * step + _INSIDE
        x1 = left * step + _INSIDE
        y2, x2 = y1 + span, x1 + span
        flip = uniform[:, 3] < self.flip_rate
        x1, x2 = ops.where(flip, x2, x1), ops.where(flip, x1, x2)
        return ops.stack([y1, x1, y2, x2], 1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "crop_size": self.crop_size,
                "scale_range": list(self.scale_range),
                "flip_rate": self.flip_rate, "mean": self.mean,
                "ignore_value": self.ignore_value,
                "interpolation": self.interpolation, "seed": self.seed}


def _offset(scaled, size, uniform):
    """Integer window offsets, uniform over ``[min(0, d), max(0, d)]`` with
    ``d = scaled - size``: inside the scaled image when it is larger than
    the window, a place for the image inside the window otherwise."""
    span = scaled - size
    low = ops.floor(ops.minimum(span, 0.0))
    high = ops.floor(ops.maximum(span, 0.0))
    return low + ops.minimum(ops.floor(uniform * (high - low + 1.0)),
                             high - low)


def _sample(images, masks, windows, *, size, bilinear, mean, ignore_value):
    """Samples ``size x size`` windows of images (bilinear or nearest) and
    masks (nearest), padding with ``mean`` and ``ignore_value``.

    Compiled kernels (XLA turns the batched gathers into copies, as
    in crop.py, ~10x faster than TF's CPU gather kernels and 2-3x faster
    than crop_and_resize's CPU kernel here; ``tfcnn.augment.device_ops``)
    rather than one: the sampling grid of each window's rows and columns,
    the bilinear blend of the two source rows of each output row, and
    the output pixels, with uint8 images rounded in a fourth. Fused into
    one loop over the output pixels, XLA computed the grid and the row
    blends again for every pixel (on a CPU the three kernels take ~0.7 of
    the one's time, with the same numbers).
    """
    shape = ops.shape(images)
    dtype = keras.backend.standardize_dtype(images.dtype)
    grid = _grid(windows, shape[1], shape[2], size=size)
    if bilinear:
        images = _blend_rows(images, grid)
    warped, warped_masks = _pixels(images, masks, grid, bilinear=bilinear,
                                   mean=mean, ignore_value=ignore_value)
    if dtype == "uint8":
        return _round_to_uint8(warped), warped_masks
    return ops.cast(warped, dtype), warped_masks


@device_ops.xla(reduce_retracing=True)
def _grid(windows, height, width, *, size):
    """Where each window's output rows and columns sample the input.

    Returns a dict of ``[B, size]`` tensors: ``rows``/``cols``, the
    nearest input row and column; ``top``/``bottom`` and
    ``left``/``right``, the two rows and columns a bilinear sample
    blends, with the weights ``wy`` and ``wx`` of the second; and
    ``inside_rows``/``inside_cols``, whether the sample point lies inside
    the input (else it is padding).
    """
    last_row = ops.cast(height - 1, "float32")
    last_col = ops.cast(width - 1, "float32")
    steps = ops.arange(size, dtype="float32") / max(size - 1, 1)
    ys = windows[:, 0:1] + (windows[:, 2:3] - windows[:, 0:1]) * steps
    xs = windows[:, 1:2] + (windows[:, 3:4] - windows[:, 1:2]) * steps
    top, left = ops.floor(ys), ops.floor(xs)
    return {
        "rows": _index(ops.round(ys), last_row),
        "cols": _index(ops.round(xs), last_col),
        "top": _index(top, last_row),
        "bottom": _index(top + 1.0, last_row),
        "left": _index(left, last_col),
        "right": _index(left + 1.0, last_col),
        "wy": ys - top,
        "wx": xs - left,
        "inside_rows": (ys >= 0.0) & (ys <= last_row),
        "inside_cols": (xs >= 0.0) & (xs <= last_col),
    }


@device_ops.xla(reduce_retracing=True)
def _blend_rows(images, grid):
    """``[B, size, W, C]`` float32: each output row's two source rows
    blended (the first half of a separable bilinear sample)."""
    upper = ops.cast(device_ops.batch_gather(images, grid["top"], axis=1),
                     "float32")
    lower = ops.cast(device_ops.batch_gather(images, grid["bottom"], axis=1),
                     "float32")
    return upper + (lower - upper) * grid["wy"][:, :, None, None]


@device_ops.xla(reduce_retracing=True)
def _pixels(images, masks, grid, *, bilinear, mean, ignore_value):
    """The output images (float32) and masks: columns of the blended rows
    (``bilinear``) or rows and columns of ``images`` (nearest), padding
    where the sample point lies outside the input."""
    inside = grid["inside_rows"][:, :, None] & grid["inside_cols"][:, None, :]
    warped_masks = _gather2(masks, grid["rows"], grid["cols"])
    warped_masks = ops.where(inside, warped_masks,
                             ops.cast(ignore_value, masks.dtype))
    if bilinear:
        west = device_ops.batch_gather(images, grid["left"], axis=2)
        east = device_ops.batch_gather(images, grid["right"], axis=2)
        warped = west + (east - west) * grid["wx"][:, None, :, None]
    else:
        warped = ops.cast(_gather2(images, grid["rows"], grid["cols"]),
                          "float32")
    warped = ops.where(inside[..., None], warped,
                       ops.convert_to_tensor(mean, "float32"))
    return warped, warped_masks


@device_ops.xla(reduce_retracing=True)
def _round_to_uint8(images):
    """float32 pixels rounded into uint8. A kernel of its own: fused into
    ``_pixels``, the uint8 output took that kernel from 5.5 to 9.5 ms a
    batch of 32 at 224 on a CPU, where alone it takes 1.2."""
    return ops.cast(ops.clip(ops.round(images), 0.0, 255.0), "uint8")


def _index(positions, last):
    return ops.cast(ops.clip(positions, 0.0, last), "int32")


def _gather2(images, rows, cols):
    images = device_ops.batch_gather(images, rows, axis=1)
    return device_ops.batch_gather(images, cols, axis=2)


def build_segmentation_augmentation(*, crop_size, scale_range=(0.5, 2.0),
                                    flip=True, mean=0.0, colour_jitter=0.0,
                                    ignore_value=IGNORE_VALUE, seed=0):
    """The joint augmentation layers of a segmentation training step.

    Each layer takes and returns ``{"images", "segmentation_masks"}``:
    ``RandomScaleCropFlip`` moves image and mask together, then (when
    ``colour_jitter > 0``) Keras' ``RandomColorJitter`` changes the
    image's brightness, contrast and saturation by up to that factor and
    leaves the mask as it is.

    Args:
        crop_size: int, side of the training crop.
        scale_range: pair of floats. Defaults to ``(0.5, 2.0)``.
        flip: bool, random horizontal flips. Defaults to True.
        mean: float or 3 floats, the image padding colour (the dataset's
            channel mean, so padding is zero after mean subtraction).
            Defaults to 0.
        colour_jitter: float in [0, 1), photometric strength; 0 turns it
            off. Defaults to 0.
        ignore_value: int, mask padding. Defaults to 255.
        seed: int. Defaults to 0.

    Returns:
        list of ``keras.layers.Layer``; with ``colour_jitter`` the images
        come out float32 in [0, 255], otherwise in their input dtype.
    """
    layers = [RandomScaleCropFlip(
        crop_size, scale_range=scale_range, flip_rate=0.5 if flip else 0.0,
        mean=mean, ignore_value=ignore_value, seed=seed,
        name="scale_crop_flip")]
    if colour_jitter > 0:
        layers.append(keras.layers.RandomColorJitter(
            value_range=(0, 255), brightness_factor=colour_jitter,
            contrast_factor=colour_jitter, saturation_factor=colour_jitter,
            seed=seed + 1, name="colour_jitter"))
    return layers


def augmentation_from_recipe(recipe, stats=None):
    """``build_segmentation_augmentation`` with a recipe's choices.

    The crop is ``data.crop_size`` (with ``augment.crop`` off, the host
    size ``data.resize_size``: scale and flip only), the scale range
    ``augment.scale_min``/``scale_max``, flips ``augment.flip``, the seed
    ``data.seed``, and images are padded with the training images' channel
    mean (``stats``; 0 without), so padding is zero after mean
    subtraction.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        stats: ``tfcnn.data.stats.DatasetStats`` or None. Defaults to None.

    Returns:
        list of ``keras.layers.Layer`` taking and returning
        ``{"images", "segmentation_masks"}``.
    """
    config = recipe.augment
    crop = (recipe.data.crop_size if config.crop is not CropMode.NONE
            else recipe.data.resize_size)
    mean = 0.0 if stats is None else np.asarray(stats.channel_mean).tolist()
    return build_segmentation_augmentation(
        crop_size=crop, scale_range=(config.scale_min, config.scale_max),
        flip=config.flip, mean=mean, seed=recipe.data.seed)
