"""How the tests see a refusal: the one helper every test that refuses something uses.

A refusal is a promise about words: the right exception type, a message that
names the argument (or the file), what was expected and what came.  The tests
ask for the message and check its words; these helpers check the rest:

    refusal(call, kind)          what call() raised, as text; fails if it returned or
                                 raised another type
    same_refusal(models, call)   every engine refuses call(module, model) alike: one
                                 type, one message
    checkpoint_refusal(path)     load_checkpoint's message: one line, the file named once
    cli_refusal(capsys, argv)    the command line's: one line on stderr, exit code 2
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def refusal(call: Callable[[], object], kind: type[BaseException] = ValueError,
            holds: str = "") -> str:
    """The message of the ``kind`` that ``call()`` raises, which must hold ``holds``.

    Fails the test if ``call()`` returns, or raises anything that is not a ``kind``
    (its type and message are shown).
    """
    try:
        result = call()
    except kind as error:
        message = str(error)
    except Exception as error:  # any other type: a wrong refusal, shown whole
        raise AssertionError(f"expected {kind.__name__}; got {type(error).__name__}: "
                             f"{error}") from error
    else:
        raise AssertionError(f"the bad input was accepted and gave {type(result).__name__}")
    assert holds in message, f"the message does not hold {holds!r}: {message}"
    return message


def same_refusal(models: Mapping[str, tuple], call: Callable[..., object],
                 kind: type[BaseException] = ValueError, holds: str = "") -> str:
    """Every engine refuses ``call(module, model)`` alike: one ``kind``, one message.

    Args:
        models: engine name -> (module, model), e.g. {"keras_impl": (keras_impl, model)}.
        call: the bad call, given an engine's module and model.
        kind: the exception every engine must raise.
        holds: words the message must hold (the argument's name, the detail).

    Returns:
        The message.  A failure shows each engine's words.
    """
    found = {}
    for name, (module, model) in models.items():
        try:
            found[name] = refusal(lambda m=module, x=model: call(m, x), kind)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from error
    messages = set(found.values())
    assert len(messages) == 1, "the engines refuse in different words:\n" + "\n".join(
        f"  {name}: {message}" for name, message in found.items())
    (message,) = messages
    assert holds in message, f"the message does not hold {holds!r}: {message}"
    return message


def checkpoint_refusal(path) -> str:
    """load_checkpoint's message for ``path``: a CheckpointError (a ValueError), one line,
    starting "checkpoint PATH: " and naming the file exactly once."""
    from shared.checkpoint import CheckpointError, load_checkpoint

    message = refusal(lambda: load_checkpoint(path), CheckpointError)
    assert issubclass(CheckpointError, ValueError)
    assert message.startswith(f"checkpoint {path}: ") and "\n" not in message, message
    assert message.count(str(path)) == 1, f"the file is named more than once: {message}"
    return message


def cli_refusal(capsys, argv) -> str:
    """Runs the command in-process; returns its one stderr line after checking the contract:
    exit code 2, no traceback, nothing on stdout, one line "seq2seq-rosetta: error: ..."."""
    from shared.app.cli import main

    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code} for {argv}; stderr: {err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    assert lines[0].startswith("seq2seq-rosetta: error: "), lines[0]
    assert out == "", f"a refused command printed to stdout: {out!r}"
    return lines[0]
