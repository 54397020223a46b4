"""timm's ModelEmaV2 rule (timm/utils/model_ema.py, _update: for each state_dict entry, in order,
ema_v.copy_(decay * ema_v + (1. - decay) * model_v)) replayed on train_resnet18's checkpoints, for
tests/test_train_options.cpp.

  ema_check.py DECAY INIT CK0 CK1 ... CKn [--half-init]
      INIT: the model's weights before the first step (a state_dict; --half-init: rounded to float16 first, as an
      fp16 run's model starts from them); CKt: the checkpoint after optimizer step t+1,
      holding 'model' (fp32) and 'model_ema'. Starting from INIT (timm: a deep copy of the model), applies the rule
      with each CKt's 'model' and compares with its 'model_ema'. Prints a JSON list: per checkpoint, the largest
      absolute difference over floating entries and the number of integer entries that differ.
"""
import json
import sys

import torch


def main():
    args = [a for a in sys.argv[1:] if a != "--half-init"]
    decay, init = float(args[0]), torch.load(args[1])
    rounded = (lambda v: v.half().float()) if "--half-init" in sys.argv else (lambda v: v.float())
    ema = {k: rounded(v) if v.is_floating_point() else v.clone() for k, v in init.items()}
    out = []
    for path in args[2:]:
        ck = torch.load(path)
        model, saved = ck["model"], ck["model_ema"]
        assert list(model) == list(ema) == list(saved), "state_dict keys differ"
        worst, int_diffs = 0.0, 0
        for k, ema_v in ema.items():
            ema_v.copy_(decay * ema_v + (1. - decay) * model[k])
            if ema_v.is_floating_point():
                worst = max(worst, float((ema_v - saved[k]).abs().max()) if ema_v.numel() else 0.0)
            else:
                int_diffs += int(not torch.equal(ema_v, saved[k]))
        out.append([worst, int_diffs])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
