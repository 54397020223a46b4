"""Reference LR schedules from torch.optim.lr_scheduler for tests/test_optim_sched.cpp.

  optim_sched.py IN OUT   IN: list of {"optimizer": "SGD"|"Adam", "lrs": [lr per group], "momentum": m,
                          "scheduler": name, "args": {kwargs}, "steps": n}
                          OUT: per case {"lrs": [[lr per group] after construction and after each step],
                          "momenta": [[beta1 or momentum per group] ...], "state_dict": scheduler.state_dict()
                          (callables dropped), "param_groups": optimizer.state_dict()["param_groups"]}
"""
import sys
import warnings

import torch

warnings.simplefilter("ignore")


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def run(spec):
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in spec["lrs"]]
    if spec["optimizer"] == "SGD":
        opt = torch.optim.SGD(groups, lr=0.1, momentum=spec["momentum"])
    else:
        opt = torch.optim.Adam(groups)
    sched = getattr(torch.optim.lr_scheduler, spec["scheduler"])(opt, **spec["args"])
    lrs, moms = [sched.get_last_lr()], [momenta(opt)]
    for _ in range(spec["steps"]):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
        moms.append(momenta(opt))
    sd = {k: v for k, v in sched.state_dict().items() if not callable(v)}
    return {"lrs": lrs, "momenta": moms, "state_dict": sd, "param_groups": opt.state_dict()["param_groups"]}


def main():
    src, dst = sys.argv[1:3]
    torch.save([run(spec) for spec in torch.load(src)], dst)


if __name__ == "__main__":
    main()
