"""Tensor -> tensor building blocks shared by the model builders.

``conv_norm_act`` (convolution, normalization, activation), ``residual``
(He et al. 2016), ``inception`` (Szegedy et al. 2015), ``context`` (Yu &
Koltun 2016), ``aspp`` (Chen et al. 2017, DeepLab) and ``heads`` (the
classifier heads).
"""
