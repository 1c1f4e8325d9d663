"""The label value every part of tfcnn reads as "no label".

``IGNORE_VALUE`` (255) marks the pixels of a segmentation mask that carry
no class: Pascal VOC's "void" border around objects (Everingham et al.
2010), which VOC's PNG masks store as palette index 255. Ingest keeps it,
the on-device augmentation pads masks with it, and the loss and the
metrics leave those pixels out. It sits below the data, augmentation and
training packages so that each of them takes it from this one place.
"""

IGNORE_VALUE = 255
