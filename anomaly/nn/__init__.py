"""The recurrent network: the Keras model and its training (``model``), the compiled forward pass
with explicit state (``inference``), and the chunked next-step predictor (``predictor``). The only
folder that imports TensorFlow, lazily."""
