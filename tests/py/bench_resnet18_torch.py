"""PyTorch's side of the ResNet-18 CPU training-step benchmark (examples/bench_resnet18.cpp is halftorch's):
fp32, 2 threads, batches of 128 Fashion-MNIST-sized images (1x28x28), forward + backward; prints images/s."""
import argparse
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.train()
    x = torch.randn(args.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()

    for _ in range(args.warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    dt = (time.perf_counter() - t0) / args.steps
    dc = (time.process_time() - c0) / args.steps
    print(f"torch {torch.__version__}: {dt * 1000:.1f} ms/step, {args.batch_size / dt:.1f} images/s, "
          f"{dc * 1000:.1f} CPU ms/step (batch {args.batch_size}, {args.threads} threads)")


if __name__ == "__main__":
    main()
