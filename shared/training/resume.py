"""What a resumed run must share with the checkpoint it continues, compared field by field.

A run continues only with the model it trained (the config), the vocabularies its
ids mean (the tokenizers, which the data flags rebuild), and, when the checkpoint
holds a training state, the optimizer, the seed and the batch size that make the
schedule: anything else would be a different run wearing the old one's moments.

    for what, theirs, ours in resume_differences(checkpoint, config, src_tok, tgt_tok,
                                                 settings, seed, batch_size):
        ...   # ("config.hidden_size", 64, 128), ("optimizer.lr", 0.01, 0.02), ...
"""

from __future__ import annotations

from shared.checkpoint import Checkpoint, OptimizerSettings
from shared.core.config import Seq2SeqConfig
from shared.text.tokenizer import Tokenizer


def describe_tokenizer(tokenizer: Tokenizer) -> str:
    """A tokenizer in a few words, for a message: "31 char tokens"."""
    return f"{len(tokenizer)} {tokenizer.level} tokens"


def _described(theirs: Tokenizer, ours: Tokenizer) -> tuple[str, str]:
    """Two different tokenizers in words; where size and level agree, the first id that differs."""
    described = describe_tokenizer(theirs), describe_tokenizer(ours)
    if described[0] != described[1]:
        return described
    k = next(i for i, (a, b) in enumerate(zip(theirs.tokens, ours.tokens, strict=True)) if a != b)
    return (f"{described[0]} (token {k} {theirs.tokens[k]!r})",
            f"{described[1]} (token {k} {ours.tokens[k]!r})")


def resume_differences(
    checkpoint: Checkpoint,
    config: Seq2SeqConfig,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    settings: OptimizerSettings,
    seed: int,
    batch_size: int,
) -> list[tuple[str, object, object]]:
    """(what, the checkpoint's value, this run's) for every difference, in this order:
    the tokenizers (``src_tokenizer``, ``tgt_tokenizer``: other data make other
    vocabularies, and so other vocabulary sizes), the config's fields
    (``config.<field>``), and with a training state the optimizer's settings
    (``optimizer.<field>``), ``seed`` and ``batch_size``."""
    found = [(name, *_described(theirs, ours))
             for name, theirs, ours in (("src_tokenizer", checkpoint.src_tokenizer, src_tokenizer),
                                        ("tgt_tokenizer", checkpoint.tgt_tokenizer, tgt_tokenizer))
             if theirs.to_dict() != ours.to_dict()]
    found += [(f"config.{key}", value, config.to_dict()[key])
              for key, value in checkpoint.config.to_dict().items()
              if value != config.to_dict()[key]]
    training = checkpoint.training
    if training is not None:
        found += [(f"optimizer.{field}", theirs, ours)
                  for field, theirs, ours in training.optimizer.settings.differences(settings)]
        found += [(name, theirs, ours) for name, theirs, ours in
                  (("seed", training.seed, seed), ("batch_size", training.batch_size, batch_size))
                  if theirs != ours]
    return found
