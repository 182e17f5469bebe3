#!/usr/bin/env python
"""PyTorch twin of `simemu bench train-step` and `simemu bench generate`.

The same networks, the same step, the same batch (64), the same thread count, so
the two can be run side by side on one machine:

    python benches/reference/torch_bench.py train --width 16 --size 64   # simemu bench train-step --width 16
    python benches/reference/torch_bench.py train --dims 3 --width 16    # simemu bench train-step --dims 3
    python benches/reference/torch_bench.py train --width 64 --size 64   # simemu bench train-step --width 64
    python benches/reference/torch_bench.py gen --width 64 --size 256    # simemu bench generate --arch cosmogan
    python benches/reference/torch_bench.py layers --width 16 --size 64  # simemu bench layers --width 16

`--device cuda` runs on the GPU, as `simemu --device cuda bench ...` does; every
timed run then ends with `torch.cuda.synchronize()`, so it times the work, not
its launch (cuDNN's autotuner is left off, PyTorch's default).

`layers` times each convolution block of the train-step networks alone (forward,
and forward + backward of <output, fixed gradient> into the weights and, except
for D1 whose input is data, the input), with the names simemu prints;
`compare.py` divides one JSON by the other.

Layout (simemu's `dcgan::bench`): z (64) -> linear -> (8W, S/16, S/16) -> BN, ReLU ->
four 5x5 stride-2 transposed convolutions halving the channels (BN, ReLU; the last
to one channel with a bias, then tanh). D mirrors it: 5x5 stride-2 convolutions
with W*2^l channels (bias only on the first, BN on the others), LeakyReLU(0.2),
linear -> one logit. Init N(0, 0.02). One timed step = G(z), a D update on the
real batch and the detached fake (two BN batches), a G update through the updated
D, Adam(2e-4, 0.5, 0.999). `--dims 3` (`simemu bench train-step --dims 3`) is the
same on volumes (default side 32): 4x4x4 convolutions of stride 2 and padding 1,
BatchNorm3d, batch 16. Median of --repeats runs after 2 warm-up runs;
`--json FILE` writes the median under `median_s`; peak RSS is read from VmHWM
after resetting it (Linux) before the timed runs.
"""
import argparse, json, os, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT, BATCH, BATCH_3D, LAYERS, WARM_UP = 64, 64, 16, 4, 2


# Per dimension: convolution, transposed convolution, BatchNorm, and the layers'
# (kernel, stride, padding, output padding); each layer halves or doubles the side.
LAYOUT = {
    2: (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, (5, 2, 2, 1)),
    3: (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, (4, 2, 1, 0)),
}


class Generator(nn.Module):
    def __init__(self, width, size, dims=2):
        super().__init__()
        _, conv_t, norm, (k, s, p, op) = LAYOUT[dims]
        self.top, self.seed, self.dims = width << (LAYERS - 1), size >> LAYERS, dims
        self.lin = nn.Linear(LATENT, self.top * self.seed ** dims)
        self.bn0 = norm(self.top, eps=1e-5, momentum=0.1)
        layers, ch = [], self.top
        for l in range(LAYERS):
            last = l == LAYERS - 1
            out = 1 if last else ch // 2
            layers.append(conv_t(ch, out, k, s, p, output_padding=op, bias=last))
            layers += [nn.Tanh()] if last else [norm(out, eps=1e-5, momentum=0.1), nn.ReLU()]
            ch = out
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        x = self.lin(z).view(-1, self.top, *[self.seed] * self.dims)
        return self.net(F.relu(self.bn0(x)))


class Discriminator(nn.Module):
    def __init__(self, width, size, dims=2):
        super().__init__()
        conv, _, norm, (k, s, p, _) = LAYOUT[dims]
        layers, ch = [], 1
        for l in range(LAYERS):
            out = width << l
            layers.append(conv(ch, out, k, s, p, bias=(l == 0)))
            if l > 0:
                layers.append(norm(out, eps=1e-5, momentum=0.1))
            layers.append(nn.LeakyReLU(0.2))
            ch = out
        self.net = nn.Sequential(*layers)
        self.lin = nn.Linear(ch * (size >> LAYERS) ** dims, 1)

    def forward(self, x):
        return self.lin(self.net(x).flatten(1)).squeeze(1)


def init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def layer_blocks(width, size):
    """(name, shape, module, input, input needs grad) of G's and D's conv blocks."""
    blocks = []
    for l in range(LAYERS):
        last = l == LAYERS - 1
        cin, side = width << (LAYERS - 1 - l), (size >> LAYERS) << l
        cout = 1 if last else cin // 2
        conv = nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1, bias=last)
        post = [nn.Tanh()] if last else [nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU()]
        blocks.append((f"G{l + 1}", f"{cin}→{cout} {side}²→{2 * side}²",
                       nn.Sequential(conv, *post), (BATCH, cin, side, side), True))
    for l in range(LAYERS):
        cin, cout, side = 1 if l == 0 else width << (l - 1), width << l, size >> l
        conv = nn.Conv2d(cin, cout, 5, 2, 2, bias=(l == 0))
        post = ([] if l == 0 else [nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)]) + [nn.LeakyReLU(0.2)]
        blocks.append((f"D{l + 1}", f"{cin}→{cout} {side}²→{side // 2}²",
                       nn.Sequential(conv, *post), (BATCH, cin, side, side), l > 0))
    return blocks


def timed(fn, repeats, device):
    def run():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(WARM_UP):
        run()
    reset_peak_rss()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        runs.append(time.perf_counter() - t)
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["train", "gen", "layers"])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--dims", type=int, choices=[2, 3], default=2, help="train: maps or volumes")
    ap.add_argument("--size", type=int, help="the side (default: 64 for maps, 32 for volumes)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    dev = torch.device(a.device)
    if a.size is None:
        a.size = 32 if a.dims == 3 else 64
    if a.dims == 3 and a.workload != "train":
        ap.error("--dims 3 applies to train")
    if a.workload == "layers":
        return layers(a, dev)
    volumes = a.dims == 3
    batch = BATCH_3D if volumes else BATCH
    g = Generator(a.width, a.size, a.dims).to(dev)
    g.apply(init)
    if a.workload == "train":
        d = Discriminator(a.width, a.size, a.dims).to(dev)
        d.apply(init)
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        bce = nn.BCEWithLogitsLoss()
        real = torch.randn(batch, 1, *[a.size] * a.dims, device=dev).tanh()
        ones, zeros = torch.ones(batch, device=dev), torch.zeros(batch, device=dev)

        def step():
            fake = g(torch.randn(batch, LATENT, device=dev))
            opt_d.zero_grad(set_to_none=True)
            (bce(d(real), ones) + bce(d(fake.detach()), zeros)).backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            bce(d(fake), ones).backward()
            opt_g.step()

        name, fn = f"train-step {a.size}{'³' if volumes else '²'} w{a.width}", step
    else:
        g.eval()

        @torch.no_grad()
        def gen():
            g(torch.randn(BATCH, LATENT, device=dev)).sum().item()

        name, fn = f"generate {a.size}² w{a.width}", gen
    runs = timed(fn, a.repeats, dev)
    row = {"workload": name, "threads": a.threads, "items": batch,
           "median_s": statistics.median(runs), "runs_s": runs, "peak_rss_mb": peak_rss_mb(),
           "torch": torch.__version__, "device": str(dev)}
    print(f"{name:<28} threads {a.threads}  median {row['median_s']:.4f} s  "
          f"peak RSS {row['peak_rss_mb'] or float('nan'):.0f} MB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": [row]}, f, indent=1)


def layers(a, dev):
    rows = []
    for name, shape, m, in_shape, input_grad in layer_blocks(a.width, a.size):
        m = m.to(dev)
        m.apply(init)
        m.train()
        x = torch.randn(*in_shape, device=dev).requires_grad_(input_grad)
        grad = torch.randn_like(m(x))

        def forward():
            m(x)

        def forward_backward():
            m.zero_grad(set_to_none=True)
            x.grad = None
            (m(x) * grad).sum().backward()

        for what, fn in (("forward", forward), ("forward+backward", forward_backward)):
            runs = timed(fn, a.repeats, dev)
            row = {"workload": f"layer {name} {shape} {what}", "threads": a.threads, "items": BATCH,
                   "median_s": statistics.median(runs), "runs_s": runs, "peak_rss_mb": peak_rss_mb(),
                   "torch": torch.__version__, "device": str(dev)}
            print(f"{row['workload']:<44} threads {a.threads}  median {row['median_s']:.4f} s")
            rows.append(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
