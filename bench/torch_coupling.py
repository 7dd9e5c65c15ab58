#!/usr/bin/env python3
"""PyTorch equivalent of the engine's coupling-layer training step (nice, realnvp, spline).

Our own implementation, written to match engine/flows/{mlp,coupling,nice,realnvp,spline}.cc layer
for layer: the same split (condition on the first floor(D/2) coordinates, transform the rest,
then put the transformed half first), the same conditioner MLP (hidden width H, `depth` tanh
hidden layers, zero-initialized output layer), the same bounded RealNVP log-scale
s = c tanh(r/c), and the same rational-quadratic spline (K bins on [-B, B], identity tails,
minimum bin width/height 1e-3 of the interval, inner derivatives 1e-3 + softplus(r + c0)).
The flow starts with the same learnable diagonal-Gaussian base; the target is the standard
normal N(0, I_D) (the engine's gaussian(dim=D)); the step is the annealed reverse-KL loss with
Adam (lr 1e-3, annealing over 10000 iterations), as in ../shared/bench/torch_reference.py, in
float32 like that reference (--dtype float64 for the engine's precision).

Debian's python3-torch is enough:  apt-get install -y python3-torch
Usage:  /usr/bin/python3 torch_coupling.py --flow realnvp --layers 4 --dim 2 --batch 256 \
            [--hidden 32 --depth 2 --bins 8 --bound 3 --iters 300 --threads 1]
Prints one line with the mean wall-clock microseconds per iteration after --warmup untimed
iterations ("... us/iter (cpu ... us/iter)", wall clock then process CPU time), the format
bench/compare_flows.py parses.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

MIN_BIN = 1e-3
MIN_DERIV = 1e-3
DERIV_OFFSET = math.log(math.expm1(1.0 - MIN_DERIV))


def mlp(d_in, d_out, hidden, depth):
    layers, width = [], d_in
    for _ in range(depth):
        lin = torch.nn.Linear(width, hidden)
        limit = math.sqrt(6.0 / (width + hidden))
        torch.nn.init.uniform_(lin.weight, -limit, limit)
        torch.nn.init.zeros_(lin.bias)
        layers += [lin, torch.nn.Tanh()]
        width = hidden
    out = torch.nn.Linear(width, d_out)
    torch.nn.init.zeros_(out.weight)
    torch.nn.init.zeros_(out.bias)
    layers.append(out)
    return torch.nn.Sequential(*layers)


class Coupling(torch.nn.Module):
    """Condition on x[:, :d_a], transform x[:, d_a:], output (y_b, x_a)."""

    def __init__(self, d, k, hidden, depth):
        super().__init__()
        self.d_a, self.d_b = d // 2, d - d // 2
        self.k = k
        self.net = mlp(self.d_a, k * self.d_b, hidden, depth)

    def forward(self, x):
        x_a, x_b = x[:, :self.d_a], x[:, self.d_a:]
        theta = self.net(x_a).view(-1, self.k, self.d_b)  # parameter p of coordinate i
        y_b, logdet = self.transform(theta, x_b)
        return torch.cat([y_b, x_a], dim=1), logdet


class Nice(Coupling):
    def __init__(self, d, a):
        super().__init__(d, 1, a.hidden, a.depth)

    def transform(self, theta, x_b):
        return x_b + theta[:, 0], torch.zeros(x_b.shape[0])


class RealNvp(Coupling):
    def __init__(self, d, a):
        super().__init__(d, 2, a.hidden, a.depth)
        self.c = a.scale_bound

    def transform(self, theta, x_b):
        s = self.c * torch.tanh(theta[:, 1] / self.c)
        return x_b * torch.exp(s) + theta[:, 0], s.sum(1)


class Spline(Coupling):
    def __init__(self, d, a):
        super().__init__(d, 3 * a.bins - 1, a.hidden, a.depth)
        self.bins, self.bound = a.bins, a.bound

    def transform(self, theta, x_b):
        k, b = self.bins, self.bound
        theta = theta.permute(0, 2, 1)  # (N, d_b, 3K - 1)
        widths = 2 * b * (MIN_BIN + (1 - MIN_BIN * k) * F.softmax(theta[..., :k], dim=-1))
        heights = 2 * b * (MIN_BIN + (1 - MIN_BIN * k) * F.softmax(theta[..., k:2 * k], dim=-1))
        inner = MIN_DERIV + F.softplus(theta[..., 2 * k:] + DERIV_OFFSET)
        ones = torch.ones(inner.shape[:-1] + (1,))
        derivs = torch.cat([ones, inner, ones], dim=-1)
        zero = torch.full(widths.shape[:-1] + (1,), -b)
        xk = torch.cat([zero, -b + torch.cumsum(widths, -1)], dim=-1)
        yk = torch.cat([zero, -b + torch.cumsum(heights, -1)], dim=-1)
        inside = (x_b >= -b) & (x_b <= b)
        x_in = torch.where(inside, x_b, torch.zeros_like(x_b))
        idx = (torch.searchsorted(xk[..., 1:-1].contiguous(), x_in[..., None], right=True))
        g = lambda t: t.gather(-1, idx)[..., 0]
        x0, w, y0, h = g(xk), g(widths), g(yk), g(heights)
        d0, d1 = g(derivs), derivs[..., 1:].gather(-1, idx)[..., 0]
        s = h / w
        xi = ((x_in - x0) / w).clamp(0, 1)
        t = xi * (1 - xi)
        den = s + (d1 + d0 - 2 * s) * t
        y = y0 + h * (s * xi ** 2 + d0 * t) / den
        slope = s ** 2 * (d1 * xi ** 2 + 2 * s * t + d0 * (1 - xi) ** 2) / den ** 2
        y = torch.where(inside, y, x_b)
        logdet = torch.where(inside, torch.log(slope), torch.zeros_like(slope)).sum(1)
        return y, logdet


class Scale(torch.nn.Module):
    def __init__(self, d, a):
        super().__init__()
        self.s = torch.nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return x * torch.exp(self.s), self.s.sum().expand(x.shape[0])


class Flow(torch.nn.Module):
    def __init__(self, d, layers):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.zeros(d))
        self.log_sigma = torch.nn.Parameter(torch.zeros(d))
        self.layers = torch.nn.ModuleList(layers)

    def sample(self, n):
        eps = torch.randn(n, self.mu.numel())
        z = self.mu + torch.exp(self.log_sigma) * eps
        log_q = (-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi) - self.log_sigma).sum(1)
        for layer in self.layers:
            z, ld = layer(z)
            log_q = log_q - ld
        return z, log_q


def build(a):
    kind = {"nice": Nice, "realnvp": RealNvp, "spline": Spline}[a.flow]
    layers = [kind(a.dim, a) for _ in range(a.layers)]
    if a.flow == "nice":
        layers.append(Scale(a.dim, a))  # the engine's spec: nice*L,scale
    return Flow(a.dim, layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flow", default="realnvp", choices=["nice", "realnvp", "spline"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--bins", type=int, default=8)
    ap.add_argument("--bound", type=float, default=3.0)
    ap.add_argument("--scale-bound", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--anneal", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="float32 (default) is what torch_reference.py and most users run; the "
                         "engine computes in float64")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    torch.set_default_dtype(getattr(torch, a.dtype))
    model = build(a)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def step(t):
        beta = min(1.0, 0.01 + t / a.anneal)
        z, log_q = model.sample(a.batch)
        log_p = -0.5 * (z ** 2).sum(1) - 0.5 * a.dim * math.log(2 * math.pi)
        loss = (log_q - beta * log_p).mean()
        opt.zero_grad()
        if torch.isfinite(loss):
            loss.backward()
            opt.step()
        return loss

    for t in range(a.warmup):
        step(t)
    t0, c0 = time.perf_counter(), time.process_time()
    for t in range(a.iters):
        loss = step(a.warmup + t)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(f"torch {a.flow}*{a.layers} H={a.hidden} depth={a.depth} D={a.dim} N={a.batch} {a.dtype} "
          f"iters={a.iters} threads={a.threads}: {1e6 * dt / a.iters:.1f} us/iter "
          f"(cpu {1e6 * dc / a.iters:.1f} us/iter), "
          f"{a.iters / dt:.1f} iter/s, last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
