#!/usr/bin/env python3
"""PyTorch counterpart of the engine's autoregressive, circular-convolution and LU-linear flows.

What a user would run instead of this service for the flows of issue 8: the same architecture
as engine/flows/ (a learnable diagonal-Gaussian base, then K layers of one type) trained by
reverse KL with Adam and autograd, in the style of ../shared/bench/torch_reference.py:

  iaf       y = x exp(s(x)) + m(x), MADE conditioner (tanh hidden layers, masks from a fixed
            random input order), s = 3 tanh(a / 3); one conditioner pass per layer
  maf       y = x exp(s(y)) + m(y), the same conditioner; D sequential passes per layer
  circconv  y = irfft(w_hat * rfft(x)), w_hat = exp(rho + i phi) (real at bins 0 and D/2)
  linear    y = P L (U + diag(exp(s))) x, fixed random permutation P

on Neal's funnel (v ~ N(0, 3), x_i ~ N(0, exp(v/2)); log Z = 0) or a standard Gaussian, of
dimension --dim. It prints the training throughput (wall clock and process CPU time per
iteration) and, at the end, the ELBO (the KL is -ELBO: both targets are normalized).

Debian's python3-torch is enough:  deploy/install-deps.sh --bench
Usage:  /usr/bin/python3 bench/torch_autoregressive.py --flow iaf --dim 2 --layers 4 --hidden 16 \
            --depth 1 --batch 256 --iters 300 --threads 1
bench/compare_flows.py runs it side by side with bench/train_step_bench.
"""
import argparse
import math
import time

import torch

MAX_LOG_SCALE = 3.0  # as engine/flows/autoregressive.h
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def log_p(name, z):
    if name == "funnel":
        v, x = z[:, 0], z[:, 1:]
        m = x.shape[1]
        return (-HALF_LOG_2PI - math.log(3.0) - v ** 2 / 18
                - m * HALF_LOG_2PI - 0.5 * m * v - 0.5 * (x ** 2).sum(1) * torch.exp(-v))
    if name == "gaussian":
        return (-0.5 * z ** 2 - HALF_LOG_2PI).sum(1)
    raise ValueError(name)


class Made(torch.nn.Module):
    """Masked MLP D -> (m, a), degrees as engine/flows/made.h."""

    def __init__(self, d, hidden, depth):
        super().__init__()
        order = torch.argsort(torch.rand(d))
        rank = torch.empty(d, dtype=torch.long)
        rank[order] = torch.arange(d)
        deg_in = rank + 1
        deg_h = 1 + torch.arange(hidden) % max(1, d - 1)
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        self.masks = []
        sizes = [d] + [hidden] * depth
        for l in range(depth):
            lim = 1 / math.sqrt(sizes[l])
            self.weights.append(torch.nn.Parameter(torch.empty(hidden, sizes[l]).uniform_(-lim, lim)))
            self.biases.append(torch.nn.Parameter(torch.empty(hidden).uniform_(-lim, lim)))
            prev = deg_in if l == 0 else deg_h
            self.masks.append((deg_h[:, None] >= prev[None, :]).to(torch.get_default_dtype()))
        self.weights.append(torch.nn.Parameter(torch.zeros(2 * d, hidden)))
        self.biases.append(torch.nn.Parameter(torch.zeros(2 * d)))
        out_mask = (deg_in[:, None] > deg_h[None, :]).to(torch.get_default_dtype())
        self.masks.append(torch.cat([out_mask, out_mask], 0))

    def forward(self, x):
        h = x
        for l in range(len(self.weights) - 1):
            h = torch.tanh(torch.nn.functional.linear(h, self.weights[l] * self.masks[l], self.biases[l]))
        out = torch.nn.functional.linear(h, self.weights[-1] * self.masks[-1], self.biases[-1])
        m, a = out.chunk(2, dim=1)
        return m, MAX_LOG_SCALE * torch.tanh(a / MAX_LOG_SCALE)


class Iaf(torch.nn.Module):
    def __init__(self, d, hidden, depth):
        super().__init__()
        self.made = Made(d, hidden, depth)

    def forward(self, x):
        m, s = self.made(x)
        return x * torch.exp(s) + m, s.sum(1)


class Maf(torch.nn.Module):
    def __init__(self, d, hidden, depth):
        super().__init__()
        self.made = Made(d, hidden, depth)
        self.d = d

    def forward(self, x):
        y = torch.zeros_like(x)
        for _ in range(self.d):  # sweep r fixes the coordinate of rank r
            m, s = self.made(y)
            y = x * torch.exp(s) + m
        return y, s.sum(1)


class CircConv(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.d = d
        self.nbins = d // 2 + 1
        self.rho = torch.nn.Parameter(torch.zeros(self.nbins))
        self.phi = torch.nn.Parameter(torch.zeros(self.nbins))
        phase_mask = torch.ones(self.nbins)
        phase_mask[0] = 0
        if d % 2 == 0:
            phase_mask[-1] = 0  # bins 0 and D/2 of a real filter are real
        self.phase_mask = phase_mask
        self.mult = 2 * phase_mask + (1 - phase_mask)  # paired bins count twice in log|det|

    def forward(self, x):
        w_hat = torch.polar(torch.exp(self.rho), self.phi * self.phase_mask)
        y = torch.fft.irfft(torch.fft.rfft(x, dim=1) * w_hat, n=self.d, dim=1)
        return y, (self.mult * self.rho).sum().expand(x.shape[0])


class Linear(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.perm = torch.argsort(torch.rand(d))
        self.lower = torch.nn.Parameter(torch.zeros(d, d))
        self.upper = torch.nn.Parameter(torch.zeros(d, d))
        self.s = torch.nn.Parameter(torch.zeros(d))
        self.eye = torch.eye(d)

    def forward(self, x):
        l = torch.tril(self.lower, -1) + self.eye
        u = torch.triu(self.upper, 1) + torch.diag(torch.exp(self.s))
        w = (l @ u)[self.perm]
        return x @ w.T, self.s.sum().expand(x.shape[0])


class Flow(torch.nn.Module):
    def __init__(self, d, k, make_layer):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.zeros(d))
        self.log_sigma = torch.nn.Parameter(torch.zeros(d))
        self.layers = torch.nn.ModuleList([make_layer() for _ in range(k)])

    def sample(self, n):
        eps = torch.randn(n, self.mu.numel())
        z = self.mu + torch.exp(self.log_sigma) * eps
        log_q = (-0.5 * eps ** 2 - HALF_LOG_2PI - self.log_sigma).sum(1)
        for layer in self.layers:
            z, ld = layer(z)
            log_q = log_q - ld
        return z, log_q


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="funnel", choices=["funnel", "gaussian"])
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--flow", default="iaf", choices=["iaf", "maf", "circconv", "linear"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--anneal", type=int, default=10000, help="beta_t = min(1, 0.01 + t/anneal)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations before the timing")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="float32 (default) is what torch_reference.py and most users run; the "
                         "engine computes in float64")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    torch.set_default_dtype(getattr(torch, a.dtype))
    d = a.dim
    make = {"iaf": lambda: Iaf(d, a.hidden, a.depth), "maf": lambda: Maf(d, a.hidden, a.depth),
            "circconv": lambda: CircConv(d), "linear": lambda: Linear(d)}[a.flow]
    model = Flow(d, a.layers, make)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def step(t):
        beta = min(1.0, 0.01 + t / a.anneal)
        z, log_q = model.sample(a.batch)
        loss = (log_q - beta * log_p(a.target, z)).mean()
        opt.zero_grad()
        if torch.isfinite(loss):
            loss.backward()
            opt.step()

    for t in range(a.warmup):
        step(t)
    t0, c0 = time.perf_counter(), time.process_time()
    for t in range(a.iters):
        step(a.warmup + t)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    with torch.no_grad():
        z, log_q = model.sample(a.eval_samples)
        lw = log_p(a.target, z) - log_q
        elbo = lw.mean().item()
        se = lw.std().item() / math.sqrt(a.eval_samples)
    arch = f"(hidden={a.hidden},depth={a.depth})" if a.flow in ("iaf", "maf") else ""
    print(f"torch {a.target}:{d} {a.flow}{arch}*{a.layers} N={a.batch} iters={a.iters} "
          f"{a.dtype} threads={a.threads}: {1e6 * dt / a.iters:.1f} us/iter (cpu {1e6 * dc / a.iters:.1f} "
          f"us/iter), {a.iters / dt:.1f} iter/s, ELBO {elbo:.4f} +- {se:.4f}, KL {-elbo:.4f}")


if __name__ == "__main__":
    main()
