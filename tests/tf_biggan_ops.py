"""TF ops shared by the tests' fabricated TF-Hub BigGAN modules.

Each test writes the module's generator again in TF ops, with the readings
its converter must discover; the pieces common to the BigGAN family live
here: spectral norm from u0 in the graph ('add' normalize, eps 1e-4),
nearest x2 upsampling, self-attention, and saving a TF1-format SavedModel
(tags []) whose variables carry given names. Import after checking that
TensorFlow is installed.
"""
import tensorflow as tf

EPS = 1e-4


def normalize(x):
  return x / (tf.sqrt(tf.reduce_sum(x * x)) + EPS)


def spectral_normalized(w, u0):
  """W / sigma after one power iteration from u0 [1, out] (W as [.., out])."""
  mat = tf.reshape(w, [-1, w.shape[-1]])
  v = normalize(tf.matmul(u0, mat, transpose_b=True))
  u = normalize(tf.matmul(v, mat))
  return w / tf.matmul(tf.matmul(v, mat), u, transpose_b=True)[0, 0]


def upsample(x):
  """Nearest-neighbour x2 of NHWC."""
  return tf.compat.v1.image.resize_nearest_neighbor(
      x, [2 * x.shape[1], 2 * x.shape[2]])


def attention(h, conv, scope="Generator/attention"):
  """BigGAN self-attention's residual (before gamma); conv(x, scope) is the
  layer's bias-free 1x1 SN convolution."""
  c, n = h.shape[-1], h.shape[1] * h.shape[2]
  theta = tf.reshape(conv(h, f"{scope}/theta"), [-1, n, c // 8])
  phi = tf.nn.max_pool2d(conv(h, f"{scope}/phi"), 2, 2, "VALID")
  phi = tf.reshape(phi, [-1, n // 4, c // 8])
  g = tf.nn.max_pool2d(conv(h, f"{scope}/g"), 2, 2, "VALID")
  g = tf.reshape(g, [-1, n // 4, c // 2])
  attn = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True), axis=-1)
  o = tf.reshape(tf.matmul(attn, g), [-1, h.shape[1], h.shape[2], c // 2])
  return conv(o, f"{scope}/o_conv")


def save_module(path, values, signatures):
  """Writes a TF1 SavedModel (tags []) with one variable per `values` item.

  signatures(var) -> {name: (inputs {key: placeholder}, outputs {key: t})},
  built in the module's graph; var(name) is the variable of that name.
  """
  graph = tf.Graph()
  with graph.as_default():
    variables = {name: tf.compat.v1.get_variable(
        name, initializer=tf.constant(value)) for name, value in values.items()}
    defs = signatures(variables.__getitem__)
    utils = tf.compat.v1.saved_model.signature_def_utils
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      builder = tf.compat.v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(session, tags=[], signature_def_map={
          name: utils.predict_signature_def(inputs, outputs)
          for name, (inputs, outputs) in defs.items()})
      builder.save()
