"""PyTorch doing what `train_resnet18` (examples/train_resnet18.cpp) does on Fashion-MNIST, for end-to-end timing
(scripts/bench-cpu times both as whole processes): load the first --limit images of the train and test splits
(fmnist.py, the same normalisation), ResNet-18 with conv1 1->64, Adam (lr 1e-3), batches of --batch-size in file
order (--no-shuffle) or in a seeded permutation, cross-entropy; after each epoch the test accuracy in eval mode
in batches of 256; at the end model.half()'s state_dict saved to --out, "test accuracy: X" printed.

  --precision fp32
  --precision fp16: what train_resnet18 does: model.half(), fp32 master weights stepped by Adam, dynamic loss
                    scaling as torch's GradScaler (init 2^16, x0.5 on inf/NaN, x2 after 2000 clean steps),
                    written by hand because torch's GradScaler refuses fp16 gradients. torch 1.13 has no CPU
                    fp16 convolution; torch 2.x runs it without a fast path.
  --precision bf16: what train_resnet18 --precision bf16 does: model.bfloat16(), fp32 master weights stepped by
                    Adam, no loss scaling.
  --precision bf16-autocast: fp32 model under torch.autocast("cpu", torch.bfloat16), torch's own fast CPU
                    half-precision training, for comparison.
  --channels-last: model and batches in torch.channels_last."""
import argparse
import contextlib
import math
import time

import torch

import fmnist


class MasterWeights:
    """fp32 copies of a 16-bit model's parameters, stepped by Adam, with dynamic loss scaling."""

    def __init__(self, model, lr, scaled):
        self.params = list(model.parameters())
        self.masters = [p.detach().float().clone() for p in self.params]
        self.opt = torch.optim.Adam(self.masters, lr=lr)
        self.scaled = scaled
        self.scale, self.tracker = 65536.0 if scaled else 1.0, 0

    def step(self):
        grads = [p.grad.float() / self.scale for p in self.params]
        if self.scaled and not all(torch.isfinite(g).all() for g in grads):
            self.scale *= 0.5
            self.tracker = 0
            return False
        for m, g in zip(self.masters, grads):
            m.grad = g
        self.opt.step()
        with torch.no_grad():
            for p, m in zip(self.params, self.masters):
                p.copy_(m)
        self.tracker += 1
        if self.scaled and self.tracker == 2000:
            self.scale *= 2.0
            self.tracker = 0
        return True

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit", type=int, default=0, help="first N images of each split (0: all)")
    ap.add_argument("--no-shuffle", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=["fp32", "fp16", "bf16", "bf16-autocast"], default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--out", default="model_fp16.pth")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    limit = args.limit or None
    x_train, y_train = fmnist.load(True, limit)
    x_test, y_test = fmnist.load(False, limit)
    torch.manual_seed(args.seed)
    model = fmnist.resnet18_1ch()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision, torch.float32)
    fp16 = args.precision == "fp16"
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(dtype).to(memory_format=layout).train()
    x_test = x_test.to(dtype).contiguous(memory_format=layout)
    if dtype != torch.float32:
        opt = MasterWeights(model, args.lr, scaled=fp16)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    autocast = (lambda: torch.autocast(device_type="cpu", dtype=torch.bfloat16)) \
        if args.precision == "bf16-autocast" else contextlib.nullcontext
    n = len(y_train)
    steps = math.ceil(n / args.batch_size)
    print(f"train_resnet18_torch: fashion-mnist, {n} train / {len(y_test)} test images, {args.precision}"
          f"{' channels_last' if args.channels_last else ''} on cpu, "
          f"batch {args.batch_size}, Adam lr {args.lr}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    accuracy = None
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        order = torch.arange(n) if args.no_shuffle else torch.randperm(n, generator=gen)
        t_epoch = time.perf_counter()
        for step in range(steps):
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            with autocast():
                logits = model(x_train[idx].to(dtype).contiguous(memory_format=layout))
                loss = torch.nn.functional.cross_entropy(logits.float(), y_train[idx])
            opt.zero_grad(set_to_none=True)
            (loss * opt.scale if fp16 else loss).backward()
            opt.step()
            loss_value = loss.item()
            if (step + 1) % max(1, steps // 10) == 0 or step + 1 == steps:
                ips = (step + 1) * args.batch_size / (time.perf_counter() - t_epoch)
                print(f"epoch {epoch + 1} step {step + 1}/{steps}  loss {loss_value:.4f}  {ips:.0f} img/s", flush=True)
        with autocast():
            accuracy = fmnist.accuracy(model, x_test, y_test)
        model.train()
        print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f}")
    if accuracy is None:
        with autocast():
            accuracy = fmnist.accuracy(model, x_test, y_test)
    sd = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(sd, args.out)
    print(f"saved {args.out}")
    print(f"test accuracy: {accuracy:.4f}")
    print(f"train_resnet18_torch: {time.perf_counter() - start:.1f} s in the script")


if __name__ == "__main__":
    main()
