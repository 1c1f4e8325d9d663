"""Typed recipes: one TOML file describes a whole experiment.

A recipe has the sections ``data``, ``augment``, ``model``, ``train``,
``evaluate``, ``export`` and ``predict``. Each section is a frozen dataclass
below, the schema, and each key is a field declared with
``key(default, "doc")``: its description is the one place where that key is
documented (``tfcnn keys`` prints them; ``tfcnn.recipe_docs``). Unknown keys
and values of the wrong type are rejected with the key's dotted name.
``--set section.key=value`` overrides any key; the value is read as a TOML
value, and a bare word is read as a string.

Reading TOML is ``tfcnn.recipe_parse`` and writing it ``tfcnn.recipe_toml``;
the functions at the end of this module (``load_recipe``, ``dump_toml``,
...) call them with ``Recipe``.

Recipes hold choices, never derived numbers: steps per epoch, class counts
and schedule boundaries are computed from the dataset's manifest.
"""

import dataclasses
import enum
import math
from pathlib import Path

from tfcnn import recipe_docs
from tfcnn import recipe_parse
from tfcnn import recipe_toml
from tfcnn import storage
from tfcnn.errors import RecipeError
from tfcnn.preprocessing_modes import CropMode
from tfcnn.preprocessing_modes import MeanMode
from tfcnn.recipe_docs import key


class Source(enum.Enum):
    """Where the data comes from."""

    DIGITS = "digits"        # scikit-learn's 8x8 digits, written out as PNGs
    # scenes of scikit-learn's digits with per-pixel masks (segmentation)
    DIGIT_SCENES = "digit_scenes"
    FOLDER = "folder"        # class folders of images, ingested to shards
    TFRECORD = "tfrecord"    # existing shards in the ImageNet schema
    TFDS = "tfds"            # a tfds dataset already prepared on disk
    SYNTHETIC = "synthetic"  # random images: measures the model alone


class Strategy(enum.Enum):
    """The tf.distribute strategy that training runs under."""

    AUTO = "auto"                  # mirrored over all GPUs, else one device
    MIRRORED = "mirrored"          # MirroredStrategy over train.devices
    # MultiWorkerMirroredStrategy over the cluster train.cluster names
    MULTI_WORKER = "multi_worker"
    ONE_DEVICE = "one_device"      # OneDeviceStrategy on the first device


class Cluster(enum.Enum):
    """Where a multi-worker run learns its cluster (tfcnn.train.cluster)."""

    AUTO = "auto"              # the first of the three below that is set
    TF_CONFIG = "tf_config"    # the TF_CONFIG environment variable
    SLURM = "slurm"            # the job step srun started
    KUBERNETES = "kubernetes"  # an Indexed Job behind a headless service


class Backend(enum.Enum):
    """The Keras backend that trains (tfcnn.train.backend)."""

    TENSORFLOW = "tensorflow"
    JAX = "jax"


class Precision(enum.Enum):
    """Keras dtype policy for training."""

    FLOAT32 = "float32"
    MIXED_FLOAT16 = "mixed_float16"
    MIXED_BFLOAT16 = "mixed_bfloat16"


class Optimizer(enum.Enum):
    SGD = "sgd"      # SGD with train.momentum (Nesterov off), as AlexNet
    ADAM = "adam"
    ADAMW = "adamw"  # decoupled weight decay of train.weight_decay


class Schedule(enum.Enum):
    CONSTANT = "constant"
    STEP = "step"          # divide by 10 at train.step_epochs
    COSINE = "cosine"      # cosine decay to 0 after warm-up
    PLATEAU = "plateau"    # divide by 10 when val accuracy stalls (AlexNet)


class ExportFormat(enum.Enum):
    SAVEDMODEL = "savedmodel"  # TF Serving's layout, verified
    TFLITE = "tflite"          # one .tflite file (tfcnn.export.tflite)


class Quantization(enum.Enum):
    FLOAT32 = "float32"
    DYNAMIC = "dynamic"  # dynamic-range: int8 weights, float activations
    INT8 = "int8"        # full integer, calibrated on training images


class ClassWeighting(enum.Enum):
    NONE = "none"                          # every pixel counts the same
    MEDIAN_FREQUENCY = "median_frequency"  # Eigen & Fergus 2015 balancing


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: Source = key(
        Source.FOLDER,
        "where the data comes from: digits | digit_scenes | folder | tfrecord "
        "| tfds | synthetic")
    path: str = key(
        "", "images (digits: where the PNG class folders are written; "
        "digit_scenes: where the scenes' images/ and masks/ folders are "
        "written; folder: class folders or train/validation/test folders of "
        "class folders, or a Pascal VOC or images/masks folder), or the shard "
        'folder for source = "tfrecord"')
    shards: str = key(
        "", "where ingest writes shards, manifest.json and stats; empty: "
        "<path>_tfrecords")
    crop_size: int = key(
        224, "side of the square crop the network sees (AlexNet: 224)")
    resize_size: int = key(
        256, "host-side size: shorter side resized to this, centre square kept "
        "(256)")
    validation_split: float = key(
        0.1,
        "fraction of the training images held out for validation (stratified "
        "at ingest; for tfds without a validation split, the end of "
        "tfds_train_split)")
    num_shards: int = key(
        0, "number of shards per split; 0 picks one per ~128 MB")
    raw_masks: bool = key(
        False,
        "segmentation sources: store each mask as its height x width bytes of "
        "class ids instead of a PNG (Model Garden's schema, which its decoder "
        "reads): a copy to read instead of a PNG decode, 188 KB per 500x375 "
        "mask (`tfcnn ingest --raw-masks`)")
    seed: int = key(
        0, "seed for split and shard assignment, shuffling and augmentation")
    label_offset: int = key(
        0, "added to stored labels: -1 for shards with 1-based labels")
    labels_file: str = key(
        "", "shards without manifest.json: class names, one per line in label "
        "order (e.g. imagenet_lsvrc_2015_synsets.txt); empty: labels.txt "
        "beside the shards, else the class count is read off the largest "
        "label")
    eval_split: str = key(
        "test", 'split that `evaluate` reports: "test" when it exists, else '
        '"validation"')
    tfds_name: str = key(
        "", 'tfds: name of a dataset already prepared on disk (e.g. "mnist")')
    tfds_train_split: str = key("train", "tfds: split to train on")
    tfds_eval_split: str = key("test", "tfds: split that `evaluate` reports")
    tfds_data_dir: str = key(
        "", "tfds: data_dir of the prepared dataset; empty: tfds' default")
    tfds_mask_key: str = key(
        "",
        "tfds: the one-channel image feature holding segmentation masks (e.g. "
        "oxford_iiit_pet's \"segmentation_mask\"); empty: a classification "
        "dataset. Class names from data.labels_file, else the masks' ids")
    synthetic_classes: int = key(1000, "synthetic: number of classes")
    synthetic_images: int = key(1024, "synthetic: images per epoch")
    digits: tuple = key(
        (),
        "digits: the digit classes written (empty: all ten), e.g. [0, 1, 2, "
        "3, 4] to pretrain and [5, 6, 7, 8, 9] to fine-tune on")
    digits_per_class: int = key(
        0, "digits: at most this many training images per class (0: all; the "
        "test split stays whole)")
    cache: bool = key(
        False,
        "keep decoded, resized uint8 images in memory after the first epoch")
    shuffle_buffer: int = key(
        0, "shuffle buffer in images; 0 picks min(10000, training images)")

    def __post_init__(self):
        _coerce(self)
        _positive(self, "crop_size", "resize_size")
        if self.crop_size > self.resize_size:
            raise RecipeError(
                "data.crop_size must be <= data.resize_size. Received: "
                f"crop_size={self.crop_size}, "
                f"resize_size={self.resize_size}")
        if not 0.0 <= self.validation_split < 1.0:
            raise RecipeError(
                "data.validation_split must be in [0, 1). Received: "
                f"{self.validation_split}")
        if self.eval_split not in ("train", "validation", "test"):
            raise RecipeError(
                "data.eval_split must be train, validation or test. "
                f"Received: {self.eval_split!r}")

    @property
    def shard_dir(self):
        """The folder holding shards and manifest.json."""
        if self.source is Source.TFRECORD:
            return storage.path(self.shards or self.path)
        if self.shards:
            return storage.path(self.shards)
        return Path(f"{self.path.rstrip('/')}_tfrecords")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    crop: CropMode = key(
        CropMode.RANDOM,
        'training crop to data.crop_size: "random" (a random square, '
        'AlexNet), "inception" (random 8-100% of the area, aspect 3/4-4/3, '
        "resized; the host decodes only that window; ResNets as in Model "
        'Garden and timm) or "none" (the whole image resized); evaluation '
        "takes the centre square for random and inception")
    flip: bool = key(
        True, "random horizontal flip in training (off for digits and text)")
    pca_lighting: float = key(
        0.1, "std of AlexNet's PCA lighting coefficients; 0 turns it off")
    mean: MeanMode = key(
        MeanMode.AUTO,
        "mean subtraction: image | channel | none | imagenet (ImageNet's "
        "channel mean and std, and its PCA when the data has no statistics), "
        "or keras.applications' caffe | torch | tf; auto: the convention of "
        "keras.applications' model with model.weights = \"imagenet\" (caffe "
        "for VGG and ResNet), else image. image and channel need `tfcnn "
        "stats`")
    mixup_alpha: float = key(
        0.0,
        "MixUp's alpha (Beta distribution, Zhang et al. 2018); 0 turns it off")
    cutmix_alpha: float = key(
        0.0,
        "CutMix's alpha (Beta distribution, Yun et al. 2019); 0 turns it off")
    randaugment: float = key(
        0.0, "RandAugment magnitude in [0, 1]; 0 turns it off")
    scale_min: float = key(
        0.5, "segmentation: each training image and its mask are scaled by a "
        "factor drawn uniformly from [scale_min, scale_max] before the padded "
        "crop (DeepLab: 0.5 to 2.0); 1 and 1 turn scaling off")
    scale_max: float = key(
        2.0, "segmentation: the largest random scale factor (see scale_min)")

    def __post_init__(self):
        # AugmentConfig(mean="channel") and crop="inception" too.
        _coerce(self)
        if not (math.isfinite(self.scale_min) and math.isfinite(
                self.scale_max) and 0.0 < self.scale_min <= self.scale_max):
            raise RecipeError(
                "augment.scale_min and augment.scale_max must satisfy "
                "0 < scale_min <= scale_max. Received: "
                f"scale_min={self.scale_min}, scale_max={self.scale_max}")
        for name in ("pca_lighting", "mixup_alpha", "cutmix_alpha"):
            if not getattr(self, name) >= 0:
                raise RecipeError(
                    f"augment.{name} must be >= 0 (0 turns it off). "
                    f"Received: {getattr(self, name)}")
        if not 0.0 <= self.randaugment <= 1.0:
            raise RecipeError(
                "augment.randaugment must be in [0, 1]. Received: "
                f"{self.randaugment}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str = key(
        "alexnet", "registered model name: `tfcnn models` lists them")
    options: dict = key(
        doc="extra keyword arguments for the model builder, checked by the "
        "builder", factory=dict)
    weights: str = key(
        "",
        "start from trained weights (empty: random initialization): a tfcnn "
        "run directory, a .keras, .weights.h5 or keras.applications-style .h5 "
        "file, or \"imagenet\" (keras.applications' file for vgg16, vgg19, "
        "resnet50, resnet101, resnet152; fetched by Keras). Matched by layer "
        "name and shape; layers that differ (a new classifier) keep their "
        "fresh init")
    weights_until: str = key(
        "", "take model.weights only up to this layer (inclusive); the layers "
        "after it keep their fresh initialization and are the head that "
        "train.trainable = \"head\" and train.head_epochs train (Model "
        "Garden's init_checkpoint_modules = \"backbone\"); empty: every "
        "layer that matches")
    weights_partial: bool = key(
        False, "accept model.weights that fill less than half of the network's "
        "tensors outside its new head (another architecture's, on purpose); "
        "off: such a load is refused, naming the first layers it misses")

    def __post_init__(self):
        _coerce(self)
        if self.weights_until and not self.weights:
            raise RecipeError(
                "model.weights_until needs model.weights (the weights to "
                f"take up to that layer). Received: weights_until="
                f"{self.weights_until!r}, weights=''")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = key(10, "passes over the training split")
    batch_size: int = key(128, "global batch size, split evenly over replicas")
    learning_rate: float = key(
        0.01, "learning rate for a global batch of train.lr_batch_size images")
    scale_lr: bool = key(
        False, "linear scaling rule (Goyal et al. 2017): the rate used is "
        "learning_rate * batch_size / lr_batch_size; off: learning_rate as is")
    lr_batch_size: int = key(
        256, "the global batch that train.learning_rate was tuned for")
    optimizer: Optimizer = key(Optimizer.SGD, "sgd | adam | adamw")
    momentum: float = key(0.9, "SGD momentum (AlexNet: 0.9)")
    weight_decay: float = key(
        0.0, "L2 weight decay (SGD/Adam: added to the loss; AdamW: decoupled)")
    schedule: Schedule = key(
        Schedule.CONSTANT,
        "learning-rate schedule: constant | step | cosine | plateau")
    warmup_epochs: float = key(
        0.0, "linear warm-up from 0 over this many epochs")
    step_epochs: tuple = key(
        (), "epochs at which the step schedule divides the rate by 10")
    plateau_patience: int = key(
        2,
        "plateau: epochs without a better val_accuracy before dividing by 10")
    label_smoothing: float = key(
        0.0, "label smoothing of the cross-entropy, in [0, 1)")
    ema_decay: float = key(
        0.0, "decay of an exponential moving average of the weights (Keras' "
        "optimizer use_ema, e.g. 0.999); the saved, evaluated and exported "
        "model carries the averaged weights (the checkpoints and the "
        "validation during training the raw ones); 0: off")
    early_stopping_patience: int = key(
        0, "stop when the validation metric (val_accuracy, segmentation's "
        "val_mean_iou) has not improved for this many epochs and restore the "
        "best epoch's weights (checkpoints/best.keras); resumes with the run; "
        "0: off")
    clip_norm: float = key(
        0.0, "clip the gradients to this global norm (Keras' global_clipnorm; "
        "Pascanu et al. 2013); 0: off")
    class_weighting: ClassWeighting = key(
        ClassWeighting.NONE,
        "segmentation: none | median_frequency (class weights of the pixel "
        "loss from the manifest's pixel counts per class)")
    backend: Backend = key(
        Backend.TENSORFLOW,
        "the Keras backend that trains: tensorflow | jax (the same tf.data "
        "input pipeline feeds it; under jax, strategy auto or mirrored spreads "
        "each batch over the devices with keras.distribution.DataParallel, and "
        "multi_worker is TensorFlow's alone); `tfcnn train` and `tfcnn run` "
        "set KERAS_BACKEND from it")
    strategy: Strategy = key(
        Strategy.AUTO, "auto | mirrored | multi_worker | one_device")
    devices: tuple = key(
        (), 'devices for strategy = "mirrored", e.g. ["/gpu:0", "/gpu:1"]')
    cluster: Cluster = key(
        Cluster.AUTO,
        "multi_worker: where the cluster comes from: auto | tf_config | slurm "
        "| kubernetes (auto: TF_CONFIG, else a Slurm step, else a Kubernetes "
        "Indexed Job)")
    cluster_port: int = key(
        8888,
        "multi_worker under slurm or kubernetes: the workers' first gRPC port "
        "(Slurm: a node's tasks listen on it plus their rank on the node)")
    join_timeout: int = key(
        900,
        "multi_worker: seconds every worker waits for all of them to start")
    worker_timeout: int = key(
        60,
        "multi_worker: a worker silent this many seconds (killed, lost) ends "
        "the others' training with an error naming it")
    model_dir: str = key(
        "runs/model",
        "checkpoints, backups, TensorBoard logs and the trained model go here")
    backup_steps: int = key(
        1000,
        "also back up the training state every N steps within an epoch (a "
        "killed run resumes there); 0: at epoch ends only")
    precision: Precision = key(
        Precision.FLOAT32, "float32 | mixed_float16 (GPU) | mixed_bfloat16")
    jit_compile: bool = key(False, "compile the train step with XLA")
    steps_per_execution: int = key(
        1, "train steps run per call into the graph (fewer host round trips)")
    steps_per_epoch: int = key(
        0, "0: one pass over the training split per epoch")
    histogram_freq: int = key(
        0, "TensorBoard: weight histograms every N epochs; 0 (the default) "
        "leaves them out")
    profile_steps: str = key(
        "",
        'TensorBoard: profile these steps, "a,b" (e.g. "10,20"); empty: none')
    seed: int = key(0, "seed of weight initialization and dropout")
    trainable: str = key(
        "all",
        "the layers that train: all | head (the classifier: the network's "
        "last layer with weights, or the layers after model.weights_until) | "
        "from:<layer name> (that layer and all after it); the others are "
        "frozen (a frozen batch norm runs in inference mode)")
    head_epochs: int = key(
        0, "fine-tuning in two stages: the first head_epochs of train.epochs "
        "train the head alone, the rest train.trainable; 0: one stage")
    unfreeze_lr_divisor: float = key(
        10.0,
        "second stage of a two-stage run: the learning rate is divided by "
        "this")

    def __post_init__(self):
        _coerce(self)
        _positive(self, "epochs", "batch_size", "steps_per_execution",
                  "lr_batch_size", "join_timeout", "worker_timeout",
                  "cluster_port", "unfreeze_lr_divisor")
        if self.cluster_port > 65535:
            raise RecipeError(
                "train.cluster_port must be a TCP port, at most 65535. "
                f"Received: {self.cluster_port}")
        if not (self.trainable in ("all", "head") or (
                self.trainable.startswith("from:") and self.trainable[5:])):
            raise RecipeError(
                "train.trainable must be \"all\", \"head\" or "
                f"\"from:<layer name>\". Received: {self.trainable!r}")
        if not 0 <= self.head_epochs < self.epochs:
            raise RecipeError(
                "train.head_epochs must be in [0, train.epochs) (the "
                "stage after it needs an epoch). Received: "
                f"head_epochs={self.head_epochs}, epochs={self.epochs}")
        if not (math.isfinite(self.learning_rate)
                and self.learning_rate > 0):
            raise RecipeError(
                "train.learning_rate must be a finite number > 0. Received: "
                f"{self.learning_rate}")
        if self.epochs > MAX_EPOCHS:
            raise RecipeError(
                f"train.epochs must be at most {MAX_EPOCHS:,} (a typo? "
                "ImageNet recipes run 90-600). Received: "
                f"{self.epochs}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise RecipeError(
                "train.ema_decay must be in [0, 1) (0 turns it off). "
                f"Received: {self.ema_decay}")
        if self.early_stopping_patience < 0 or self.clip_norm < 0:
            raise RecipeError(
                "train.early_stopping_patience and train.clip_norm must be "
                ">= 0 (0 turns them off). Received: early_stopping_patience="
                f"{self.early_stopping_patience}, clip_norm={self.clip_norm}")
        if self.ema_decay and self.early_stopping_patience:
            raise RecipeError(
                "train.ema_decay and train.early_stopping_patience exclude "
                "each other: the best checkpoint that early stopping "
                "restores holds the raw weights, not their average. "
                f"Received: ema_decay={self.ema_decay}, "
                f"early_stopping_patience={self.early_stopping_patience}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise RecipeError(
                "train.label_smoothing must be in [0, 1). Received: "
                f"{self.label_smoothing}")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    ten_crop: bool = key(
        False, "also report the AlexNet paper's 10-crop accuracy")

    def __post_init__(self):
        _coerce(self)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    export_dir: str = key(
        "saved_models",
        "export root, the folder `tfcnn serve` serves: SavedModels land in "
        "<export_dir>/<name>/<version>/ (TF Serving's layout)")
    name: str = key(
        "model",
        "model name: the <name> folder and the name TF Serving serves it "
        "under")
    version: int = key(0, "0: the next free version")
    top_k: int = key(5, "classes returned per image by the serving signature")
    format: ExportFormat = key(
        ExportFormat.SAVEDMODEL,
        "what `tfcnn export` writes: savedmodel (TF Serving's layout) | "
        "tflite: <export_dir>/<name>.tflite (<name>_<quantization>.tflite "
        "when quantized), uint8 image in, probabilities or a segmentation "
        "class map out, with <file>.json holding the class names. `tfcnn run` "
        "publishes the SavedModel (its predict stage uses it) and, with "
        "tflite, writes the .tflite beside it too (its tflite stage: skipped "
        "when the file holds the trained model, replaced only under --force "
        "or --overwrite)")
    quantization: Quantization = key(
        Quantization.FLOAT32,
        "tflite: float32 | dynamic (int8 weights) | int8 (weights and "
        "activations, calibrated on 100 images of the training split)")

    def __post_init__(self):
        _coerce(self)
        _positive(self, "top_k")


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    images: tuple = key(
        (), "images to predict after export; empty: one held-out image")

    def __post_init__(self):
        _coerce(self)


@dataclasses.dataclass(frozen=True)
class Recipe:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = dataclasses.field(
        default_factory=EvaluateConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)

    def replace(self, **sections):
        """Returns a copy with whole sections or section fields replaced.

        ``recipe.replace(train={"epochs": 2})`` changes one key.
        """
        changes = {}
        for section, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, section), **value)
            changes[section] = value
        return dataclasses.replace(self, **changes)


# More passes than any published recipe needs: a larger count is a typo.
MAX_EPOCHS = 100_000


def _coerce(config):
    """Converts and checks a config's fields as the TOML path does, so
    ``AugmentConfig(mean="channel")`` works and a bad value fails at
    construction naming its key."""
    section = _SECTION_OF[type(config)]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{section}.{field.name}"
        converted = recipe_parse.convert(field.type, value, key)
        if isinstance(converted, str) and "\0" in converted:
            # The OS takes no NUL in a path or name: say so here, not in a
            # ValueError traceback from the first open().
            raise RecipeError(
                f"{key} holds a NUL byte (\\u0000), which no path or name "
                f"may hold. Received: {converted!r}")
        if field.name == "seed" and not 0 <= converted < 2**32:
            # The range NumPy's and TensorFlow's global seeds accept.
            raise RecipeError(
                f"{key} must be in [0, 2**32). Received: {converted}")
        if converted is not value:
            object.__setattr__(config, field.name, converted)


def _positive(config, *names):
    section = _SECTION_OF[type(config)]
    for name in names:
        value = getattr(config, name)
        if not value > 0:  # NaN too
            raise RecipeError(
                f"{section}.{name} must be > 0. Received: {value}")


_SECTION_OF = {
    field.type: field.name for field in dataclasses.fields(Recipe)
}


def packaged_recipes():
    """Names of the recipes shipped in the package (``tfcnn/recipes/``).

    Returns:
        sorted list of str, e.g. ``["alexnet_imagenet", "quickstart"]``.
    """
    return recipe_parse.packaged_recipes()


def recipe_text(name):
    """The TOML text of a packaged recipe, comments included (see
    ``tfcnn.recipe_parse.recipe_text``)."""
    return recipe_parse.recipe_text(name)


def load_recipe(path, overrides=()):
    """Reads a recipe (a TOML file, or the name of a packaged recipe),
    applies ``--set`` overrides (``"section.key=value"`` strings) and
    returns the validated ``Recipe``; ``tfcnn.recipe_parse.load`` says
    more, and raises ``RecipeError`` naming the key or file."""
    return recipe_parse.load(Recipe, path, overrides)


def recipe_from_dict(raw, overrides=()):
    """Builds a ``Recipe`` from nested plain values (parsed TOML).

    Args:
        raw: dict of sections, as ``tomllib`` returns them.
        overrides: iterable of ``"section.key=value"`` strings applied first
            (``--set``). Defaults to none.
    """
    return recipe_parse.from_dict(Recipe, raw, overrides)


def recipe_to_dict(recipe):
    """Returns the recipe as nested plain values (Enums as their strings)."""
    return recipe_toml.to_dict(recipe)


def dump_toml(recipe):
    """Serializes a recipe as TOML (the resolved recipe beside a run)."""
    return recipe_toml.dump(recipe)


def key_docs():
    """Returns ``[(dotted key, type or choices, default, doc)]`` for every
    key, the table ``tfcnn keys`` prints; each doc is its field's (``key``
    in ``tfcnn.recipe_docs``)."""
    return recipe_docs.key_docs(Recipe)


recipe_docs.document_sections(Recipe)
