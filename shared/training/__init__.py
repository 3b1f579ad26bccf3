"""What both frameworks' trainers share, and what a training run is scored and kept by.

``checks`` (arguments, the divergence check, batches), ``epochs`` (the trainers'
end-of-epoch hook, early stopping), ``heldout`` (the held-out pairs), ``metrics`` (loss,
token accuracy, exact match, BLEU and chrF, defined once), ``evaluation`` (a model scored
on pairs by any engine), ``resume`` (what a resumed run must share with its checkpoint),
``record`` (a run's history and checkpoints, epoch by epoch).

May import: shared.core, shared.files, shared.text, shared.layout, shared.checkpoint;
NumPy, the standard library, and inside functions sacrebleu (BLEU and chrF, the
``metrics`` extra).
"""
