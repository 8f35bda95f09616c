"""Shared base of medresae's models: a functional graph inside a Model subclass."""

import keras

from medresae._seeding import python_random_seeded
from medresae._validation import check_divisible
from medresae.layers._dtype import dtype_policy_scope


class FunctionalModel(keras.Model):
    """A functional `keras.Model` whose config is its constructor arguments.

    A subclass collects its constructor arguments in a dict, calls
    `super().__init__(config, **kwargs)`, and implements
    `_graph(**config)`, which returns `(inputs, outputs, spatial_divisor)`.
    `get_config` returns `config` (plus name, dtype and `metadata`, a
    JSON-serialisable dict of facts about the training) and `from_config`
    calls the constructor, so a `.keras` file rebuilds the same graph on any
    backend.

    `dtype`: the dtype policy of every layer of the model (e.g.
    'mixed_float16' or 'mixed_bfloat16' for mixed-precision training), kept
    in the config; None takes the policy in force when the model is built.
    """

    def __init__(self, config, metadata=None, dtype=None, **kwargs):
        policy = None if dtype is None else keras.dtype_policies.get(dtype)
        with dtype_policy_scope(policy):
            inputs, outputs, divisor = self._graph(**config)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._constructor_config = dict(config)
        self._model_dtype = policy
        # Free-form, JSON-serialisable facts about how the model was trained
        # (e.g. the intensity normalisation), saved inside the .keras file.
        self.metadata = dict(metadata or {})
        self._spatial_divisor = tuple(divisor)

    def _graph(self, **config):
        raise NotImplementedError(f"{type(self).__name__} must implement _graph(**config).")

    @property
    def spatial_divisor(self) -> tuple[int, ...]:
        """Per-axis multiple that every input size must have (pad with
        `medresae.pad_to_multiple` otherwise)."""
        return self._spatial_divisor

    @property
    def spatial_dims(self) -> int:
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
        if self._model_dtype is not None:
            config["dtype"] = keras.dtype_policies.serialize(self._model_dtype)
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def with_dtype(self, dtype: str | keras.dtype_policies.DTypePolicy) -> "FunctionalModel":
        """The same model (weights and metadata included) with every layer in
        another dtype policy, e.g. 'float32' to run a model trained in mixed
        precision on a CPU; the model itself when every layer already has it.

        Examples:
            >>> from medresae.models import ResUNet
            >>> mixed = ResUNet(spatial_dims=2, filters=(4, 8), n_blocks=1, dtype="mixed_float16")
            >>> mixed.get_layer("head").dtype_policy.name
            'mixed_float16'
            >>> mixed.with_dtype("float32").get_layer("head").dtype_policy.name
            'float32'
        """
        policy = keras.dtype_policies.get(dtype)
        if all(layer.dtype_policy.name == policy.name for layer in self._flatten_layers()):
            return self
        config = self.get_config()
        config["dtype"] = keras.dtype_policies.serialize(policy)
        # Rebuilding draws initialiser seeds from Python's `random`: not from the caller's.
        with python_random_seeded(0):
            copy = type(self).from_config(config)
        copy.set_weights(self.get_weights())
        return copy
