"""Shared base of medresae's models: a functional graph inside a Model subclass."""

import keras

from medresae._validation import check_divisible


class FunctionalModel(keras.Model):
    """A functional `keras.Model` whose config is its constructor arguments.

    Subclasses build their graph in `__init__`, then call
    `self._finish(inputs, outputs, config, spatial_divisor, **kwargs)`;
    a `metadata` keyword (a JSON-serialisable dict) is kept in the config. `get_config` returns
    `config` (plus the name) and `from_config` calls the constructor, so a
    `.keras` file rebuilds the same graph on any backend.
    """

    def _finish(self, inputs, outputs, config, spatial_divisor, metadata=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._constructor_config = dict(config)
        # Free-form, JSON-serialisable facts about how the model was trained
        # (e.g. the intensity normalisation), saved inside the .keras file.
        self.metadata = dict(metadata or {})
        self._spatial_divisor = tuple(spatial_divisor)

    @property
    def spatial_divisor(self):
        """Per-axis multiple that every input size must have (pad with
        `medresae.pad_to_multiple` otherwise)."""
        return self._spatial_divisor

    @property
    def spatial_dims(self):
        return len(self._spatial_divisor)

    def _check_inputs(self, inputs):
        shape = tuple(None if s is None else int(s) for s in inputs.shape)
        expected_rank = self.spatial_dims + 2
        if len(shape) != expected_rank:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank {expected_rank} "
                f"(batch, {self.spatial_dims} spatial axes, channels). "
                f"Received: inputs.shape={shape}"
            )
        check_divisible(shape[1:-1], self._spatial_divisor, "inputs.shape[1:-1]")

    def call(self, inputs, training=None, mask=None, **kwargs):
        if hasattr(inputs, "shape"):
            self._check_inputs(inputs)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def predict(self, x, *args, **kwargs):
        # TensorFlow may trace `call` with unknown sizes; check arrays up front.
        if hasattr(x, "shape") and hasattr(x, "ndim"):
            self._check_inputs(x)
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, **self._constructor_config}
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
