"""PyTorch's side of the ResNet-18 CPU benchmark (examples/bench_resnet18.cpp is halftorch's): one training step
(forward, cross-entropy, backward, torch.optim.Adam lr 1e-3 step and zero_grad) or, with --eval, one forward
under torch.no_grad() in model.eval(), on a random batch; prints ms/step and images/s, then one JSON line.
Runs with Debian's python3-torch 1.13 (/usr/bin/python3) and with torch 2.x (scripts/torch-venv).

  --image-size 28 --channels 1: the Fashion-MNIST model of fmnist.py (conv1 1->64, 10 classes);
  --image-size 224 --channels 3: torchvision's resnet18 (1000 classes).
  --precision fp32 | bf16-autocast (torch.autocast("cpu", torch.bfloat16), fp32 weights) | bf16
              (model.bfloat16()) | fp16 (model.half(), for the record: torch has no fast CPU fp16 path).
  --channels-last: model and input in torch.channels_last.
A mode this torch cannot run prints the JSON line with "error" instead of the timings (exit status 0)."""
import argparse
import contextlib
import json
import time

import torch
import torchvision

DTYPES = {"fp32": torch.float32, "bf16-autocast": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_model(channels, num_classes):
    model = torchvision.models.resnet18(num_classes=num_classes)
    if channels != 3:
        model.conv1 = torch.nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--precision", choices=list(DTYPES), default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--num-classes", type=int, default=0, help="default: 10 with 1 channel, else 1000")
    ap.add_argument("--eval", action="store_true", help="forward only, model.eval() under torch.no_grad()")
    ap.add_argument("--no-optimizer", action="store_true", help="forward + backward only, no Adam step")
    args = ap.parse_args()
    num_classes = args.num_classes or (10 if args.channels == 1 else 1000)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mode = "eval" if args.eval else "train-no-optimizer" if args.no_optimizer else "train"
    record = {"impl": "torch", "version": torch.__version__, "mode": mode, "precision": args.precision,
              "channels_last": args.channels_last, "batch": args.batch_size, "channels": args.channels,
              "image_size": args.image_size, "num_classes": num_classes, "threads": torch.get_num_threads(),
              "steps": args.steps}

    dtype = DTYPES[args.precision]
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = build_model(args.channels, num_classes).to(dtype=dtype, memory_format=fmt)
    model.train(not args.eval)
    x = torch.randn(args.batch_size, args.channels, args.image_size, args.image_size).to(dtype=dtype,
                                                                                          memory_format=fmt)
    y = torch.arange(args.batch_size) % num_classes
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def autocast():
        if args.precision != "bf16-autocast":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)

    def step():
        if args.eval:
            with torch.no_grad(), autocast():
                model(x)
            return
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if not args.no_optimizer:
            opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()

    label = (f"torch {torch.__version__} {mode} {args.precision}{' channels_last' if args.channels_last else ''} "
             f"{args.batch_size}x{args.channels}x{args.image_size}x{args.image_size}")
    try:
        for _ in range(args.warmup):
            step()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step()
    except RuntimeError as e:
        print(f"{label}: not supported: {e}")
        record["error"] = str(e).splitlines()[0]
        print(json.dumps(record, sort_keys=True))
        return
    dt = (time.perf_counter() - t0) / args.steps
    dc = (time.process_time() - c0) / args.steps
    print(f"{label}: {dt * 1000:.1f} ms/step, {args.batch_size / dt:.1f} images/s, {dc * 1000:.1f} CPU ms/step "
          f"({record['threads']} threads)")
    record.update(ms_per_step=dt * 1000, images_per_s=args.batch_size / dt, cpu_ms_per_step=dc * 1000)
    print(json.dumps(record, sort_keys=True))


if __name__ == "__main__":
    main()
