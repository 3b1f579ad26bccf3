"""Load a file written by ``seq2seq-rosetta port --to torch`` into a user's PyTorch module.

The mirror of ``keras_impl/ported.py``: both match by layer name, strictly both
ways, with the same messages (``shared.port.loading``).
"""

from __future__ import annotations

import torch

from shared.port.files import load
from shared.port.loading import file_layers, match


def _weighted_layers(module) -> dict:
    """{module path: {parameter: tensor}} for every module with weights, from its state_dict."""
    found: dict[str, dict] = {}
    for name, tensor in module.state_dict().items():
        layer, _, parameter = name.rpartition(".")
        found.setdefault(layer, {})[parameter] = tensor
    return found


def load_ported(module, path) -> None:
    """Set ``module``'s parameters from a ported ``.safetensors`` or ``.pt`` file, by name.

    Args:
        module: an ``nn.Module`` whose submodules are named as the port printed them.
        path: the file ``seq2seq-rosetta port --to torch`` wrote.

    Raises:
        PortError (a ValueError): the file cannot be read, or it does not fit the module;
            every mismatched layer is named, and nothing is set.
    """
    path = str(path)
    tensors = load(path, "torch")
    given = file_layers(tensors, "torch")
    wanted = {name: {parameter: tuple(t.shape) for parameter, t in parameters.items()}
              for name, parameters in _weighted_layers(module).items()}
    match(path, given, wanted)
    module.load_state_dict({name: torch.from_numpy(array) for name, array in tensors.items()},
                           strict=True)
