"""PyTorch's GradScaler sequence for tests/test_optim_amp.cpp, on the CPU.

torch 1.13's GradScaler is CUDA-only: it disables itself without CUDA, asserts its tensors are CUDA tensors, and
its two kernels (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_) have no CPU implementation.
So this runs the real torch.cuda.amp.GradScaler Python code (stages, skip logic, state_dict) with:
  - asserts off (the script re-runs itself under python -O),
  - amp_definitely_not_available patched to False,
  - the two kernels replaced by Python transcriptions of aten/src/ATen/native/cuda/AmpKernels.cu.

  optim_scaler.py IN OUT   IN: list of scenarios {"options": {init_scale, growth_factor, backoff_factor,
                           growth_interval}, "params": [tensors], "grads": [[tensor per param] per step],
                           "unscale_first": [bool per step]}
                           OUT: per scenario {"scales", "trackers", "stepped", "steps", "params", "state_dict"}
                           A {"load_state": state_dict} entry instead loads halftorch's scaler state into PyTorch's
                           GradScaler and returns {"scale", "tracker", "state_dict"}.
"""
import os
import sys

if __debug__:
    os.execv(sys.executable, [sys.executable, "-O"] + sys.argv)

import torch  # noqa: E402
import torch.cuda.amp.grad_scaler as gs  # noqa: E402


def non_finite_check_and_unscale_(grads, found_inf, inv_scale):
    """_amp_foreach_non_finite_check_and_unscale_: flag any inf/NaN; multiply in opmath even when one is found."""
    for g in grads:
        if not bool(torch.isfinite(g).all()):
            found_inf.fill_(1.0)
        if float(inv_scale) != 1.0:
            g.mul_(inv_scale)


def update_scale_(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    """_amp_update_scale_ (amp_update_scale_cuda_kernel), float32 scale, int32 tracker."""
    if float(found_inf) != 0:
        scale.fill_(float(torch.tensor(float(scale) * backoff_factor, dtype=torch.float32)))
        growth_tracker.fill_(0)
    else:
        successful = int(growth_tracker) + 1
        if successful == growth_interval:
            new_scale = torch.tensor(float(scale) * growth_factor, dtype=torch.float32)
            if bool(torch.isfinite(new_scale)):
                scale.fill_(float(new_scale))
            growth_tracker.fill_(0)
        else:
            growth_tracker.fill_(successful)
    return scale


gs.amp_definitely_not_available = lambda: False
torch._amp_foreach_non_finite_check_and_unscale_ = non_finite_check_and_unscale_
torch._amp_update_scale_ = update_scale_


def run(spec):
    params = [p.clone().requires_grad_(True) for p in spec["params"]]
    opt = torch.optim.Adam(params, lr=1e-2)
    scaler = gs.GradScaler(**spec["options"])
    out = {"scales": [], "trackers": [], "stepped": [], "steps": [], "params": []}
    for grads, unscale_first in zip(spec["grads"], spec["unscale_first"]):
        for p, g in zip(params, grads):
            p.grad = scaler.scale(g.clone())
        if unscale_first:
            scaler.unscale_(opt)
        scaler.step(opt)
        found = sum(v.item() for v in scaler._per_optimizer_states[id(opt)]["found_inf_per_device"].values())
        scaler.update()
        out["stepped"].append(found == 0)
        out["scales"].append(scaler.get_scale())
        out["trackers"].append(scaler._get_growth_tracker())
        state = opt.state.get(params[0], {})
        out["steps"].append(float(state["step"]) if "step" in state else 0.0)
        out["params"].append([p.detach().clone() for p in params])
    out["state_dict"] = scaler.state_dict()
    return out


def load_state(sd):
    """A GradScaler state_dict written by halftorch, loaded into PyTorch's GradScaler."""
    scaler = gs.GradScaler()
    scaler.load_state_dict(sd)
    return {"scale": scaler.get_scale(), "tracker": scaler._get_growth_tracker(), "state_dict": scaler.state_dict()}


def main():
    src, dst = sys.argv[1:3]
    torch.save([load_state(spec["load_state"]) if "load_state" in spec else run(spec) for spec in torch.load(src)],
               dst)


if __name__ == "__main__":
    main()
