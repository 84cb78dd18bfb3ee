"""The compiled Grad-CAM engine: prediction and heatmaps from one forward pass.

Built once per (model, target layer). Everything per frame runs inside ONE
``tf.function`` with a fixed input signature: forward pass, class choice,
gradient of each chosen class's pre-activation score with respect to the
target activations, channel weights, weighted sum, ReLU, normalisation.

CAM variants subclass :class:`CAM` and override :meth:`CAM.channel_weights` (or, for
methods that weigh each position or need no gradient, :meth:`CAM.class_map`), the one
step in which they differ; :mod:`.methods` has the family.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models.loaded import LoadedModel
from ..models.preprocessing import Scaling
from .explainer import CAMResult, ClassSpec, Explainer  # noqa: F401 - ClassSpec is part of the API here
from .graph import build_cam_model
from .registry import methods_for
from .tokens import TokenTap

log = logging.getLogger(__name__)

class CAM(Explainer):
    """Class activation maps computed in one compiled graph. Subclasses set the weights."""

    model: LoadedModel

    def __init__(
        self,
        model: LoadedModel | Any,
        layer: str | None = None,
        *,
        preprocess: str | Scaling | None = None,
        jit_compile: bool = False,
        exact: bool = True,
        fold_batchnorm: bool = True,
    ) -> None:
        """Build the CAM model and its compiled graph for ``model`` and target ``layer``.

        ``model``: a :class:`LoadedModel` or any functional/Sequential Keras model.
        ``preprocess``: how uint8 RGB frames become the model's input: a name (none, -1..1, 0..1,
        caffe, torch, lite) or a function of a float32 RGB batch in 0..255. Left out: a
        :class:`LoadedModel` keeps its own; a keras.applications model recognised by its name gets
        its ``preprocess_input``'s scaling; another model gets the pixels as they are, with a warning.
        A float batch at the model's input size is taken as already preprocessed.
        ``jit_compile``: XLA; off by default (3-5x slower on CPU, maybe faster on GPU).
        ``exact``: turn off Grappler's arithmetic optimizer (process-wide) so graph
        results equal eager Keras, and the keras.io example, to 1e-6 instead of
        ~1e-5; it cost no measurable speed here. ``False`` leaves TF's options alone.
        ``fold_batchnorm``: fold inference BatchNormalization into the convolution
        before it (about 1.4x faster on EfficientNet-Lite0; those weights are copied).
        """
        if not isinstance(model, LoadedModel):
            model = LoadedModel.from_keras(model, layer=layer, scaling=preprocess)
        else:
            if layer is not None and layer != model.layer_name:
                model = model.with_layer(layer)
            if preprocess is not None:
                model = model.with_scaling(preprocess)
        self.model = model
        import tensorflow as tf

        self._tf = tf
        if exact:
            tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
        if self.transformer_only and not model.attends:
            kind = "windowed attention it cannot follow" if model.tokens is not None else "none"
            raise ModelError(f"--method {self.method_name} follows a transformer's attention; {model.name} has "
                             f"{kind} (use gradcam, or another CAM method)")
        self._cam_model: Any  # images -> [maps, logits]: a Keras model, or a transformer's TokenTap
        if model.tokens is not None:  # a transformer: its tokens, reshaped to the patch grid, are the map
            self._cam_model = TokenTap(model)
            self._head = self._cam_model.head
            self.num_classes = int(model.keras_model.outputs[0].shape[-1])
        else:
            self._cam_model, self._head = build_cam_model(model.keras_model, model.target, fold_batchnorm)
            self.num_classes = int(self._head.logits(self._cam_model.outputs[1]).shape[-1])
        self._jit_compile = bool(jit_compile)
        self._functions: dict[int | str, Any] = {}
        self.methods = methods_for(model.attends)  # what a live view may switch to
        log.debug("%s on %s, layer %s", type(self).__name__, model.name, model.layer_name)

    @property
    def jit_compile(self) -> bool:
        """Whether the graphs are compiled with XLA (``--xla``)."""
        return self._jit_compile

    # -- the one step variants override -------------------------------------
    uses_gradients = True  # False for gradient-free methods: no backward pass is built
    method_name = "cam"  # the CLI's name of the method
    transformer_only = False  # True for the methods that follow attention (:mod:`.attention`)

    def gradients(self, tape: Any, score: Any, activations: Any) -> Any:
        """What :meth:`class_map` gets as ``grads``: d score / d activations (None without gradients).
        The attention methods take the gradients of the attention probabilities instead."""
        return tape.gradient(score, activations) if self.uses_gradients else None

    def channel_weights(self, grads: Any, activations: Any) -> Any:
        """``(N, h, w, c)`` gradients and activations -> ``(N, c)`` channel weights."""
        raise NotImplementedError

    def class_map(self, grads: Any, activations: Any, images: Any, classes: Any) -> Any:
        """The ``(N, h, w)`` map before ReLU and scaling: by default the channel-weighted sum.
        Methods that weigh each position (LayerCAM, HiResCAM) or need no gradient (EigenCAM,
        Score-CAM) override this instead of :meth:`channel_weights`."""
        return self._tf.einsum("nhwc,nc->nhw", activations, self.channel_weights(grads, activations))

    def float32(self, values: Any) -> Any:
        """``values`` (a tensor, a list of them, or None) in float32: a no-op unless the model computes
        in a lower precision (``--mixed-precision``)."""
        tf = self._tf
        return tf.nest.map_structure(lambda t: t if t is None or t.dtype == tf.float32 else tf.cast(t, tf.float32),
                                     values)

    # -- the compiled computation ---------------------------------------------
    def _graph(self, k: int) -> Any:
        """The compiled graph for K explained classes per image (traced once per K).

        The concrete function is kept and called directly: it has a fixed input
        signature (any batch size), so nothing ever retraces, and calling it skips
        tf.function's argument matching on every frame.
        """
        if k not in self._functions:
            tf = self._tf
            h, w = self.model.input_size
            function = tf.function(
                lambda x, t: self._compute(x, t, k),
                jit_compile=self._jit_compile, autograph=False,
            )
            self._functions[k] = function.get_concrete_function(
                tf.TensorSpec([None, h, w, 3], tf.float32, name="images"),
                tf.TensorSpec([None, k], tf.int32, name="targets"),
            )
        return self._functions[k]

    def _compute(self, images: Any, targets: Any, k: int) -> tuple[Any, Any, Any]:
        tf = self._tf
        # 1. Forward pass, recording the path from the target layer to the logits.
        with tf.GradientTape(persistent=k > 1) as tape:
            activations, head_input = self._cam_model(images, training=False)
            logits = self.float32(self._head.logits(head_input))
            # 2. Class choice: target >= 0 is a class index, -r means "rank r" (-1 = top-1).
            ranked = self._ranks(k)
            _, order = tf.math.top_k(logits, k=ranked)
            ranks = tf.clip_by_value(-targets - 1, 0, ranked - 1)
            chosen = tf.where(targets >= 0, targets, tf.gather(order, ranks, batch_dims=1))
            # Each chosen class's score, picked by a one-hot mask rather than an index: the same
            # value and gradient, and a graph that LiteRT's built-in ops can run (``export``).
            columns = [tf.reduce_sum(logits * tf.one_hot(chosen[:, j], self.num_classes, dtype=logits.dtype), axis=1)
                       for j in range(k)]
        heatmaps = []
        for j, column in enumerate(columns):
            # 3. Gradient of the chosen pre-activation score w.r.t. the activations (if the method uses it).
            # Under --mixed-precision they come in float16/bfloat16: weights and map are made in float32.
            grads = self.float32(self.gradients(tape, column, activations))
            # 4. The method's map, then ReLU and scale to [0, 1].
            cam = tf.nn.relu(self.class_map(grads, self.float32(activations), images, chosen[:, j]))
            peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
            cam = tf.math.divide_no_nan(cam, peak)
            heatmaps.append(tf.where(tf.math.is_finite(cam), tf.clip_by_value(cam, 0.0, 1.0), 0.0))
        del tape
        probabilities = self._head.probabilities(logits)
        return probabilities, chosen, tf.stack(heatmaps, axis=1)

    # -- public calls -------------------------------------------------------
    def explain(self, images: np.ndarray, targets: np.ndarray) -> CAMResult:
        """Run the compiled graph on already-preprocessed input.

        ``images``: float32 ``(N, h, w, 3)`` at the model's input size.
        ``targets``: int ``(N, K)``; a value >= 0 is a class index, -r means the
        r-th most likely class (r <= max(K, 5)). Heatmaps come back as ``(N, K, h, w)``.
        """
        tf = self._tf
        targets = self.check_targets(images, targets)
        fn = self._graph(targets.shape[1])
        probabilities, chosen, heatmaps = fn(tf.convert_to_tensor(images, tf.float32), tf.constant(targets))
        return CAMResult(heatmaps.numpy(), probabilities.numpy(), chosen.numpy())

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities only (one compiled forward pass, no map): for faithfulness curves."""
        if "predict" not in self._functions:
            tf = self._tf
            h, w = self.model.input_size

            def forward(x: Any) -> Any:
                _, head_input = self._cam_model(x, training=False)
                return self._head.probabilities(self.float32(self._head.logits(head_input)))

            function = tf.function(forward, jit_compile=self._jit_compile, autograph=False)
            self._functions["predict"] = function.get_concrete_function(tf.TensorSpec([None, h, w, 3], tf.float32))
        return self._functions["predict"](self._tf.convert_to_tensor(images, self._tf.float32)).numpy()

    def warm_up(self, k: int = 1) -> None:
        """Trace and run the graph once, so the first real frame is not slow."""
        h, w = self.model.input_size
        self.explain(np.zeros((1, h, w, 3), np.float32), np.full((1, k), -1, np.int32))

class GradCAM(CAM):
    """Grad-CAM (Selvaraju et al. 2017): weights are the spatial mean of the gradients."""

    method_name = "gradcam"

    def channel_weights(self, grads: Any, activations: Any) -> Any:
        return self._tf.reduce_mean(grads, axis=[1, 2])


class GradCAMPlusPlus(CAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018), with the usual exp(score) closed form."""

    method_name = "gradcam++"

    def channel_weights(self, grads: Any, activations: Any) -> Any:
        tf = self._tf
        g2, g3 = grads**2, grads**3
        total = tf.reduce_sum(activations, axis=[1, 2], keepdims=True)
        denominator = 2.0 * g2 + total * g3
        alpha = tf.math.divide_no_nan(g2, tf.where(denominator != 0.0, denominator, 1.0))
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=[1, 2])
