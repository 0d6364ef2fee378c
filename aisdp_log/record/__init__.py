"""Recording a training run: the training API, the environment it ran in, and `add`, which turns
the record into a row."""
