"""One run: the model, data, device, the engines, evaluation, checkpoints, and a run or a stack end to end."""
