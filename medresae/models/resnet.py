"""ResNet-18/34/50/101/152 backbones with an optional classifier head, 2D or 3D."""

from collections.abc import Sequence
from typing import Any, Literal

import keras

from medresae._validation import (
    check_choice,
    check_input_size,
    check_positive_int,
    check_spatial_dims,
    standardize_level_strides,
    standardize_tuple,
)
from medresae.layers import _spatial
from medresae.layers._factories import check_activation, check_norm, make_activation, make_norm
from medresae.layers.residual_block import ResidualBlock
from medresae.models._functional import FunctionalModel

# depth -> (block variant, blocks per stage); He et al. 2015, Table 1.
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# Keras' ResNet50 uses this epsilon; matching it keeps the two interchangeable.
_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="medresae")
class ResNet(FunctionalModel):
    """ResNet (He et al. 2015) in 2D or 3D, as a backbone or a classifier.

    With `spatial_dims=2, depth=50` and the defaults this is the same
    network as `keras.applications.ResNet50(weights=None)`: 7x7 stride-2
    stem, 3x3 max pool, four stages of bottleneck blocks (64, 128, 256, 512
    filters, expansion 4, stride on the first 1x1 convolution), global
    average pooling and a softmax classifier.

    Args:
        depth: 18, 34, 50, 101 or 152.
        spatial_dims: 2 or 3.
        in_channels: input channels.
        input_size: fixed spatial size or None (any size).
        include_top: add the global pooling and the classifier.
        num_classes: classes of the classifier.
        pooling: without the top: None (feature map), 'avg' or 'max'.
        classifier_activation: activation of the classifier ('softmax',
            None for logits, ...).
        stem_strides: stride of the stem conv and of the max pool, per axis
            (e.g. (2, 2, 1) for thick slices).
        stage_strides: stride of stages 2-4: int, per-axis tuple, or one of
            those per stage.
        filters: filters of each of the four stages (the reference: 64,
            128, 256, 512; bottleneck blocks output 4 times as many). Models
            saved by earlier versions give `width`, the first stage's,
            doubled per stage; it is still read.
        norm: 'batch', 'group', 'instance' or 'none'.
        groups: groups of group norm.
        activation: activation name.

    Examples:
        >>> model = ResNet(depth=18, spatial_dims=3, in_channels=1, num_classes=2,
        ...                filters=(8, 16, 32, 64))
        >>> model.predict(np.zeros((1, 32, 32, 16, 1), "float32"), verbose=0).shape
        (1, 2)
    """

    def __init__(
        self,
        depth: int = 50,
        spatial_dims: int = 2,
        in_channels: int = 3,
        input_size: Sequence[int | None] | None = None,
        include_top: bool = True,
        num_classes: int = 1000,
        pooling: Literal["avg", "max"] | None = "avg",
        classifier_activation: str | None = "softmax",
        stem_strides: int | Sequence[int] = 2,
        stage_strides: int | Sequence[int] | Sequence[int | Sequence[int]] = 2,
        filters: list[int] | tuple[int, ...] = (64, 128, 256, 512),
        norm: Literal["batch", "group", "instance", "none"] = "batch",
        groups: int = 8,
        activation: str | None = "relu",
        **kwargs: Any,
    ) -> None:
        width = kwargs.pop("width", None)
        if width is not None:
            filters = tuple(check_positive_int(width, "width") * 2**i for i in range(4))
        config = dict(
            depth=depth, spatial_dims=spatial_dims, in_channels=in_channels,
            input_size=input_size, include_top=bool(include_top), num_classes=num_classes,
            pooling=pooling, classifier_activation=classifier_activation,
            stem_strides=stem_strides, stage_strides=stage_strides, filters=filters,
            norm=norm, groups=groups, activation=activation,
        )
        super().__init__(config, **kwargs)

    def _graph(self, depth, spatial_dims, in_channels, input_size, include_top, num_classes, pooling,
               classifier_activation, stem_strides, stage_strides, filters, norm, groups, activation):
        sd = check_spatial_dims(spatial_dims)
        check_choice(depth, "depth", tuple(DEPTHS))
        variant, stage_blocks = DEPTHS[depth]
        check_positive_int(in_channels, "in_channels")
        if isinstance(filters, (int, str)) or not isinstance(filters, (list, tuple)) or len(filters) != 4:
            raise ValueError(f"`filters` must be 4 ints, one per stage. Received: filters={filters!r}")
        widths = [check_positive_int(f, f"filters[{i}]") for i, f in enumerate(filters)]
        stem = standardize_tuple(stem_strides, sd, "stem_strides")
        stages = standardize_level_strides(stage_strides, 3, sd, "stage_strides")
        check_choice(pooling, "pooling", (None, "avg", "max"))
        if include_top:
            check_positive_int(num_classes, "num_classes")
            check_activation(classifier_activation, "classifier_activation")
        check_norm(norm, groups, widths + [w * 4 for w in widths])
        check_activation(activation)
        size = check_input_size(input_size, sd)

        inputs = keras.Input((*size, in_channels), name="image")
        x = _spatial.zero_padding(sd)(3, name="conv1_pad")(inputs)
        x = _spatial.conv(sd)(widths[0], 7, strides=stem, name="conv1_conv")(x)
        norm_layer = make_norm(norm, groups, _EPSILON, name="conv1_bn")
        x = norm_layer(x) if norm_layer is not None else x
        act = make_activation(activation, name="conv1_relu")
        x = act(x) if act is not None else x
        pool_pad = tuple((1, 1) if s > 1 else (0, 0) for s in stem)
        x = _spatial.zero_padding(sd)(pool_pad, name="pool1_pad")(x)
        pool_size = tuple(3 if s > 1 else 1 for s in stem)
        x = _spatial.max_pool(sd)(pool_size, strides=stem, name="pool1_pool")(x)
        for stage, n in enumerate(stage_blocks):
            for j in range(n):
                strides = stages[stage - 1] if (stage > 0 and j == 0) else 1
                x = ResidualBlock(
                    widths[stage], variant=variant, spatial_dims=sd, strides=strides,
                    norm=norm, groups=groups, activation=activation,
                    norm_epsilon=_EPSILON, name=f"conv{stage + 2}_block{j + 1}",
                )(x)
        if include_top:
            x = _spatial.global_pool(sd, "avg")(name="avg_pool")(x)
            x = keras.layers.Dense(num_classes, activation=classifier_activation, name="predictions")(x)
        elif pooling is not None:
            x = _spatial.global_pool(sd, pooling)(name=f"{pooling}_pool")(x)
        return inputs, x, (1,) * sd
