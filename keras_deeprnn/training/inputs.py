"""`fit_input`: a task's batches as `fit` should get them on each backend."""

import keras


def fit_input(batches):
    """`batches` (a task's `PyDataset`) as `fit` should get it on this backend.

    On TensorFlow, Keras turns a PyDataset into a `tf.data` pipeline whose
    shapes are fixed by the first two batches, and batches of other lengths
    then fail. A pipeline with unknown batch and time axes avoids that.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    signature = tuple(
        tf.TensorSpec([None, None, *array.shape[2:]], tf.as_dtype(array.dtype))
        for array in batches[0]
    )
    epochs_seen = [0]

    def generate():
        # PyDataset reshuffles in on_epoch_end; tf.data may stop pulling
        # before the generator ends, so the reshuffle comes first instead.
        if epochs_seen[0]:
            batches.on_epoch_end()
        epochs_seen[0] += 1
        for index in range(len(batches)):
            yield tuple(batches[index])

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
