"""A CPU stand-in for ``torch.cuda.set_sync_debug_mode("error")``, shared by the tests."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class FailOnSync(TorchDispatchMode):
    """Records operations that synchronise host and device on a GPU: reading a value
    (``.item()``, ``bool(t)``), ``nonzero`` and boolean-mask indexing (data-dependent
    sizes), and host data copied to the device: ``torch.tensor([...])`` (a tensor made
    from Python values) and ``t[i] = 0`` (``copy_`` from a fresh host scalar) are blocking
    host-to-device copies on a GPU; ``t[i:] = 0`` (a ``fill_``) and ``torch.full`` are not."""

    def __init__(self):
        super().__init__()
        self.syncs = []
        self.host_data = []  # tensors made from Python values (kept alive: ids stay unique)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default,
                    torch.ops.aten.masked_select.default):
            self.syncs.append(name)
        elif func is torch.ops.aten.copy_.default and any(
                args[1] is t for t in self.host_data):
            self.syncs.append(name + " from host data")
        elif func in (torch.ops.aten.index.Tensor, torch.ops.aten.index_put.default,
                      torch.ops.aten.index_put_.default):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(i is not None and i.dtype == torch.bool for i in indices):
                self.syncs.append(name + " with a bool mask")
        out = func(*args, **kwargs)
        if func is torch.ops.aten.lift_fresh.default:
            if out.dim() > 0:
                self.syncs.append(name + " of host data")
            self.host_data.append(out)
        return out
