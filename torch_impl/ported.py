"""Load a file written by ``seq2seq-rosetta port --to torch`` into a user's PyTorch module.

The mirror of ``keras_impl/ported.py``: both match by layer name, strictly both
ways, with the same messages (``shared.port.loading``).  A PyTorch layer is a
module path, found in the module's ``state_dict`` wherever it is nested.
"""

from __future__ import annotations

import torch

from shared.port.files import load_ported_file
from shared.port.loading import file_layers, left_alone, match


def _weighted_layers(module) -> dict:
    """{module path: {parameter: tensor}} for every module with weights, from its state_dict."""
    found: dict[str, dict] = {}
    for name, tensor in module.state_dict().items():
        layer, _, parameter = name.rpartition(".")
        found.setdefault(layer, {})[parameter] = tensor
    return found


def load_ported(module, path) -> list[str]:
    """Set ``module``'s parameters from a ported ``.safetensors`` or ``.pt`` file, by name.

    Args:
        module: an ``nn.Module`` whose submodules are named as the port printed them.
        path: the file ``seq2seq-rosetta port --to torch`` wrote.

    Returns:
        The module paths left as they were because a ``--partial`` port skipped them
        ([] for a whole port).

    Raises:
        PortError (a ValueError): the file cannot be read, or it does not fit the module;
            every mismatched layer is named, and nothing is set.
    """
    path = str(path)
    ported = load_ported_file(path, "torch")
    given = file_layers(ported.tensors, "torch")
    layers = _weighted_layers(module)
    wanted = {name: {parameter: tuple(t.shape) for parameter, t in parameters.items()}
              for name, parameters in layers.items()}
    alone = left_alone(wanted, ported.skipped, "torch")
    match(path, given, {name: w for name, w in wanted.items() if name not in alone})
    state = {name: torch.from_numpy(array) for name, array in ported.tensors.items()}
    for name in alone:  # what the port skipped keeps the module's own values
        state.update({f"{name}.{p}" if name else p: t for p, t in layers[name].items()})
    module.load_state_dict(state, strict=True)
    return alone
