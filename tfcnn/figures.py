"""Figures for people: image grids, mask overlays, confusion matrices.

One home for the drawing that ``tfcnn preview`` (PNG files) and the
TensorBoard callbacks of ``tfcnn.summaries`` (image cards) share, so
a mask or a grid looks the same in both:

- ``captioned_grid``: images in a grid, each enlarged (nearest neighbour)
  to a readable size with its caption under it;
- ``overlay_masks``: class masks blended over their images in Pascal VOC's
  palette colours (background left as it is, void in VOC's void colour);
- ``mask_pairs``: each image beside its mask overlay, captioned with the
  classes the mask shows;
- ``segmentation_figure``: rows of image | truth | prediction under column
  titles, with a colour legend naming each class shown;
- ``filter_grid``: a convolution's kernels (Fig. 3 of Krizhevsky et al.
  2012);
- ``confusion_image``: a labelled confusion matrix with a colour scale.

Every function returns a uint8 ``[H, W, 3]`` array except ``tile`` and
``filter_grid`` (float tiles in [0, 1]); ``tf.summary.image`` takes either
with a batch axis added. Text is drawn with Pillow's default font.
"""

import math

import numpy as np

# Tiles narrower than this are enlarged so that the captions under them
# stay readable, e.g. for 8x8 digits.
MIN_TILE = 96
_CAPTION_HEIGHT = 14
_PAD = 2
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def captioned_grid(images, captions, *, columns=None, min_tile=MIN_TILE,
                   side=None):
    """Lays images out in a grid with a caption under each.

    Args:
        images: uint8 ``[N, H, W, 3]`` array.
        captions: list of N str.
        columns: int or None; None makes the grid about square.
            Defaults to None.
        min_tile: int, tiles smaller than this many pixels are enlarged
            (by a whole factor, nearest neighbour). Defaults to 96.
        side: int or None, every tile resized to this many pixels square
            instead (a grid small enough for TensorBoard's image card to
            show at full size). Defaults to None.

    Returns:
        uint8 ``[rows * (h + caption), columns * w, 3]`` array (with
        padding).
    """
    from PIL import Image
    from PIL import ImageDraw

    images = np.asarray(images, np.uint8)
    count, height, width = images.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    zoom = max(1, math.ceil(min_tile / max(height, width)))
    tile_h, tile_w = (side, side) if side else (height * zoom, width * zoom)
    cell_h, cell_w = tile_h + _CAPTION_HEIGHT + _PAD, tile_w + _PAD
    canvas = Image.new("RGB", (columns * cell_w + _PAD,
                               rows * cell_h + _PAD), _WHITE)
    draw = ImageDraw.Draw(canvas)
    for index, (image, caption) in enumerate(zip(images, captions)):
        top = _PAD + (index // columns) * cell_h
        left = _PAD + (index % columns) * cell_w
        tile = Image.fromarray(image).resize((tile_w, tile_h),
                                             Image.NEAREST)
        canvas.paste(tile, (left, top))
        draw.text((left + 1, top + tile_h + 1),
                  clip_text(draw, caption, tile_w - 2), fill=_BLACK)
    return np.asarray(canvas)


def overlay_masks(images, masks, *, alpha=0.5, ignore_value=255):
    """Blends each mask's class colours over its image.

    Class 0 (background) leaves the image as it is; class ``i`` is tinted
    with VOC's colour ``i`` and the ignore value with VOC's void colour,
    each at opacity ``alpha``.

    Args:
        images: uint8 ``[N, H, W, 3]``.
        masks: integer ``[N, H, W]`` class ids.
        alpha: float in [0, 1]. Defaults to 0.5.
        ignore_value: int. Defaults to 255.

    Returns:
        uint8 ``[N, H, W, 3]``.
    """
    images = np.asarray(images, np.float32)
    masks = np.asarray(masks).astype(np.int64) % 256
    colours = _palette(ignore_value).astype(np.float32)[masks]
    weight = np.where(masks[..., None] == 0, 0.0, alpha)
    blended = images * (1.0 - weight) + colours * weight
    return np.round(blended).astype(np.uint8)


def mask_pairs(images, masks, class_names, *, ignore_value=255):
    """Each image beside itself with its mask overlaid, and captions.

    Args:
        images: uint8 ``[N, H, W, 3]``.
        masks: int ``[N, H, W]`` class ids (``ignore_value`` void).
        class_names: list of str, in label order.
        ignore_value: int. Defaults to 255.

    Returns:
        ``(uint8 [N, H, 2W, 3] tiles, list of N captions)``; a caption
        names the classes its mask shows besides class 0 (background),
        or class 0 alone.
    """
    images = np.asarray(images, np.uint8)
    masks = np.asarray(masks)
    tiles = np.concatenate([images, overlay_masks(
        images, masks, ignore_value=ignore_value)], axis=2)
    captions = [", ".join(str(class_names[i]) for i in np.unique(mask)
                          if 0 < i < len(class_names))
                or str(class_names[0]) for mask in masks]
    return tiles, captions


def segmentation_figure(images, masks, predicted, class_names, *,
                        ignore_value=255, min_tile=128):
    """Rows of image | truth | prediction, titled, with a colour legend.

    The truth and prediction columns show the masks over the image
    (``overlay_masks``); the legend under the rows names every class that
    appears in either (and "void" where the truth has ignored pixels) next
    to its colour, class 0 as untinted. Tiles are enlarged to at least
    ``min_tile`` pixels so that small crops stay readable on TensorBoard's
    image card.

    Args:
        images: uint8 ``[N, H, W, 3]``.
        masks: int ``[N, H, W]`` true class ids (``ignore_value`` void).
        predicted: int ``[N, H, W]`` predicted class ids.
        class_names: list of str, in label order.
        ignore_value: int. Defaults to 255.
        min_tile: int. Defaults to 128.

    Returns:
        uint8 ``[H, W, 3]``.
    """
    from PIL import Image
    from PIL import ImageDraw

    images = np.asarray(images, np.uint8)
    masks = np.asarray(masks).astype(np.int64)
    predicted = np.asarray(predicted).astype(np.int64)
    count, height, width = images.shape[:3]
    zoom = max(1, math.ceil(min_tile / max(height, width)))
    tile_h, tile_w = height * zoom, width * zoom
    columns = (("image", images),
               ("truth", overlay_masks(images, masks,
                                       ignore_value=ignore_value)),
               ("prediction", overlay_masks(images, predicted,
                                            ignore_value=ignore_value)))
    font = text_font(13)
    title_h, gap = 20, 4
    shown = sorted(set(np.unique(masks).tolist())
                   | set(np.unique(predicted).tolist()))
    # Class 0 is left untinted (``overlay_masks``): a white swatch.
    legend = [(_class_name(class_names, i) + (" (untinted)" if i == 0
                                              else ""), i)
              for i in shown if i != ignore_value]
    if ignore_value in shown:
        legend.append(("void", ignore_value))
    grid_w = 3 * tile_w + 4 * gap
    swatch, row_h = 12, 18
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entry_w = max([probe.textlength(name, font=font)
                   for name, _ in legend] or [0]) + swatch + 14
    per_row = max(1, int((grid_w - gap) // entry_w))
    legend_h = math.ceil(len(legend) / per_row) * row_h + gap
    canvas = Image.new("RGB", (grid_w, title_h + count * (tile_h + gap)
                               + legend_h), _WHITE)
    draw = ImageDraw.Draw(canvas)
    for c, (title, tiles) in enumerate(columns):
        left = gap + c * (tile_w + gap)
        centred_text(draw, title, left + tile_w / 2, title_h / 2, font,
                     _BLACK)
        for r in range(count):
            canvas.paste(Image.fromarray(tiles[r]).resize(
                (tile_w, tile_h), Image.NEAREST),
                (left, title_h + r * (tile_h + gap)))
    palette = _palette(ignore_value)
    top = title_h + count * (tile_h + gap)
    for k, (name, class_id) in enumerate(legend):
        x = gap + (k % per_row) * entry_w
        y = top + (k // per_row) * row_h + 3
        fill = _WHITE if class_id == 0 else tuple(
            int(v) for v in palette[class_id])
        draw.rectangle([x, y, x + swatch, y + swatch], outline=_BLACK,
                       fill=fill)
        draw.text((x + swatch + 4, y + swatch / 2), name, fill=_BLACK,
                  font=font, anchor="lm")
    return np.asarray(canvas)


def filter_grid(kernel, min_side=48, grey=False):
    """The kernels of a convolution as a grid, each scaled to [0, 1].

    RGB kernels (``c_in = 3``) are shown in colour, others (and all when
    ``grey``) as the mean over their input channels; small kernels are
    enlarged (nearest neighbour) to at least ``min_side`` pixels.

    Args:
        kernel: ``[kh, kw, c_in, c_out]`` array.
        min_side: int. Defaults to 48.
        grey: bool, the input is grey (three equal channels): show each
            kernel's channel mean in grey. Defaults to False.

    Returns:
        float32 ``[H, W, 3]``.
    """
    kernel = np.asarray(kernel, np.float32)
    if kernel.shape[2] == 3 and not grey:
        tiles = np.transpose(kernel, (3, 0, 1, 2))
    else:
        tiles = np.repeat(np.transpose(kernel.mean(axis=2, keepdims=True),
                                       (3, 0, 1, 2)), 3, axis=-1)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    tiles = (tiles - low) / np.maximum(high - low, 1e-6)
    scale = max(1, math.ceil(min_side / tiles.shape[1]))
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    return tile(tiles, pad=3)


def confusion_image(matrix, class_names=None, max_side=240):
    """A confusion matrix drawn for TensorBoard's image card.

    Rows are the true classes and columns the predicted ones, each cell
    coloured by its share of the row (viridis: dark 0%, yellow 100%) with
    its count written in it; class names label both axes, with axis titles
    and a colour scale. Beyond about 30 classes the cells are too small
    for text: names and counts are left out, the colours stay.

    Args:
        matrix: ``[K, K]`` counts, rows true, columns predicted.
        class_names: list of K str, or None ("0", "1", ...). Defaults to
            None.
        max_side: int, the matrix part's side in pixels at most: with the
            labels the image then fits TensorBoard's card (about 340 px)
            without being scaled down. Defaults to 240.

    Returns:
        uint8 ``[H, W, 3]``.
    """
    from PIL import Image
    from PIL import ImageDraw

    counts = np.asarray(matrix, np.int64)
    k = counts.shape[0]
    names = ([str(i) for i in range(k)] if class_names is None
             else [str(n) for n in class_names])
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    cell = min(40, max_side / k)
    labelled = cell >= 16
    cell = int(cell) if cell >= 1 else cell
    font = text_font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    name_len = (min(80, max(probe.textlength(n, font=font) for n in names))
                + 6 if labelled else 0)
    title_h, bar_w = 18, 14
    left = title_h + int(name_len)
    top = 8
    side = int(round(cell * k))
    right_labels = int(probe.textlength("100%", font=font)) + 6
    width = left + side + 12 + bar_w + right_labels + 4
    height = top + side + int(name_len) + title_h + 4
    canvas = Image.new("RGB", (width, height), _WHITE)
    draw = ImageDraw.Draw(canvas)
    colours = viridis(shares)
    # Cells as pixels, enlarged (or, for hundreds of classes, averaged)
    # to the matrix's side.
    canvas.paste(Image.fromarray(colours).resize(
        (side, side), Image.NEAREST if cell >= 1 else Image.BOX),
        (left, top))
    for r in range(k if labelled else 0):
        for c in range(k):
            x, y = left + c * cell, top + r * cell
            if counts[r, c]:
                ink = _BLACK if shares[r, c] > 0.6 else _WHITE
                centred_text(draw, str(counts[r, c]), x + cell / 2,
                             y + cell / 2, font, ink)
    if labelled:
        for i, name in enumerate(names):
            name = clip_text(probe, name, name_len - 6, font)
            draw.text((left - 4, top + i * cell + cell / 2), name,
                      fill=_BLACK, font=font, anchor="rm")
            label = _text_image(name, font).rotate(90, expand=True)
            canvas.paste(label, (int(left + i * cell + cell / 2
                                     - label.width / 2), top + side + 4))
    # Axis titles.
    centred_text(draw, "predicted class", left + side / 2,
                 top + side + name_len + title_h / 2, font, _BLACK)
    title = _text_image("true class", font).rotate(90, expand=True)
    canvas.paste(title, (2, int(top + side / 2 - title.height / 2)))
    # Colour scale: 100% at the top, 0% at the bottom.
    bar_x = left + side + 12
    ramp = viridis(np.linspace(1.0, 0.0, side)[:, None])
    for y in range(side):
        draw.line([bar_x, top + y, bar_x + bar_w - 1, top + y],
                  fill=tuple(int(v) for v in ramp[y, 0]))
    draw.text((bar_x + bar_w + 3, top), "100%", fill=_BLACK, font=font,
              anchor="lt")
    draw.text((bar_x + bar_w + 3, top + side), "0%", fill=_BLACK,
              font=font, anchor="lb")
    return np.asarray(canvas)


# Viridis (matplotlib's default colour map) at five stops.
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140],
                     [94, 201, 98], [253, 231, 37]], np.float64)


def viridis(values):
    """``[...]`` values in [0, 1] -> ``[..., 3]`` uint8 colours."""
    scaled = np.clip(np.asarray(values, np.float64), 0, 1) * 4
    low = np.minimum(np.floor(scaled).astype(int), 3)
    frac = (scaled - low)[..., None]
    colours = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac
    return np.round(colours).astype(np.uint8)


def tile(tiles, columns=None, pad=1):
    """Float tiles ``[N, h, w, C]`` in a grid on white, ``pad`` apart."""
    count, height, width, channels = tiles.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (height + pad) + pad,
                    columns * (width + pad) + pad, channels), np.float32)
    for i in range(count):
        top = pad + (i // columns) * (height + pad)
        left = pad + (i % columns) * (width + pad)
        grid[top:top + height, left:left + width] = tiles[i]
    return grid


def text_font(size):
    """Pillow's default font at ``size`` px (a bitmap font without
    FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: bitmap font
        return ImageFont.load_default()


def centred_text(draw, text, x, y, font, fill):
    """Draws ``text`` centred on ``(x, y)``."""
    draw.text((x, y), text, fill=fill, font=font, anchor="mm")


def clip_text(draw, text, width, font=None):
    """``text``, shortened with "..." to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _text_image(text, font):
    """White image with ``text`` in black, to paste rotated."""
    from PIL import Image
    from PIL import ImageDraw

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    image = Image.new("RGB", (int(right - left) + 2, int(bottom - top) + 2),
                      _WHITE)
    ImageDraw.Draw(image).text((1 - left, 1 - top), text, fill=_BLACK,
                               font=font)
    return image


def _palette(ignore_value):
    from tfcnn.data import segmentation_masks

    palette = segmentation_masks.voc_palette()
    palette[ignore_value % 256] = segmentation_masks.VOID_COLOUR
    return palette


def _class_name(class_names, index):
    return (str(class_names[index]) if 0 <= index < len(class_names)
            else str(index))
