"""Reference runs with real torch.optim for tests/test_optim.cpp.

IN holds a list of cases, OUT a list of results, one per case.
  optim_ref.py run IN OUT     IN: {"kind", "groups": [{options, "params": [index...]}], "params": [tensors],
                                   "grads": [[tensor or None per param] per step], "snapshot": k}
                              OUT: {"trajectory": [[params after step t]...], "snapshot_params": params after step k,
                                    "snapshot_state": optimizer.state_dict() after step k, "final_state": ...}
  optim_ref.py resume IN OUT  IN additionally holds "state_dict" (written by halftorch) and the params it belongs
                              to; torch loads it and runs the given grads. OUT: {"params", "final_state"}.
"""
import sys

import torch

KINDS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}


def make_optimizer(spec, params):
    groups = []
    for g in spec["groups"]:
        opts = {k: (tuple(v) if k == "betas" else v) for k, v in g.items() if k != "params"}
        groups.append(dict(opts, params=[params[i] for i in g["params"]]))
    return KINDS[spec["kind"]](groups)


def run_steps(opt, params, grads):
    out = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else g.clone()
        opt.step()
        out.append([p.detach().clone() for p in params])
    return out


def run_case(mode, spec):
    params = [p.clone().requires_grad_(True) for p in spec["params"]]
    opt = make_optimizer(spec, params)
    if mode == "run":
        k = spec["snapshot"]
        first = run_steps(opt, params, spec["grads"][:k])
        snap_params = [p.detach().clone() for p in params]
        snap_state = {"state": {i: {n: (t.clone() if isinstance(t, torch.Tensor) else t) for n, t in s.items()}
                                for i, s in opt.state_dict()["state"].items()},
                      "param_groups": opt.state_dict()["param_groups"]}
        rest = run_steps(opt, params, spec["grads"][k:])
        return {"trajectory": first + rest, "snapshot_params": snap_params, "snapshot_state": snap_state,
                "final_state": opt.state_dict()}
    elif mode == "resume":
        opt.load_state_dict(spec["state_dict"])
        run_steps(opt, params, spec["grads"])
        return {"params": [p.detach() for p in params], "final_state": opt.state_dict()}
    raise SystemExit("unknown mode " + mode)


def main():
    mode, src, dst = sys.argv[1:4]
    torch.save([run_case(mode, spec) for spec in torch.load(src)], dst)


if __name__ == "__main__":
    main()
