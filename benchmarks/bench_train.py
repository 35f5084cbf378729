"""Training throughput on bitworld: the lab's trainer against its peers, measured in the same run.

The work: 2-layer 64-wide MLPs (input 12, one policy logit), batch 32 drawn from the 256 training
inputs, 2,000 steps per run, with SGD (momentum 0.9, lr 0.05: DESIGN.md's "2,000 SGD steps", the
default) or Adam (lr 1e-3, --optimizer adam). Peers do the identical computation:
  sequential   one model after another, nn.Sequential + torch.optim (plain PyTorch)
  vmap         a torch.func vmap(grad) ensemble + torch.optim on the stacked parameters
  jax          JAX vmap + jit with the optimiser written out (only when jax is installed)
  lab          deceptionlab.train.train on an MLPEnsemble (no trajectory logging, then with it), with
               its compiled kernel (train/_train_kernel.c) and with the torch path (DECEPTIONLAB_NO_KERNEL=1)
Peers that would take minutes are timed on fewer steps and scaled to 2,000 (said in the output).
The machine is shared (steal time), so each figure is the best of two measurements (roofline: of ten
rounds, before and after), and the lab is measured first (JAX leaves its thread pool behind).
Also measured: the machine's batched-matmul throughput at this model's largest shape (the roofline
the lab's FLOP/s is set against).

    python benchmarks/bench_train.py [--optimizer sgd|adam] [--members 256] [--steps 2000] [--no-peers]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager

import torch

from deceptionlab.measure import ProbeEvaluator
from deceptionlab.models import MLPEnsemble
from deceptionlab.train import HeadData, Phase, train
from deceptionlab.train.optim import fused_adam
from deceptionlab.worlds import Bitworld

B, WIDTH, STEPS = 32, 64, 2000
OPT = {"sgd": dict(lr=0.05, momentum=0.9), "adam": dict(lr=1e-3)}
optimizer = "sgd"  # set from --optimizer (module-level so that spawned workers can be told it)


def torch_optimizer(params):
    if optimizer == "sgd":
        return torch.optim.SGD(params, **OPT["sgd"])
    return torch.optim.Adam(params, **OPT["adam"])


def model_step_flops(n_in: int, width: int = WIDTH, batch: int = B) -> float:
    fwd = 2 * batch * (n_in * width + width * width + width)
    dinput = 2 * batch * (width * width + width)  # no input gradient for the first layer
    return 2 * fwd + dinput  # forward + weight gradients (same size) + input gradients


log_every = 200  # set from --log-every


@contextmanager
def kernel_switch(on: bool):
    """The lab with its compiled training kernel (on) or its torch path (off), as DECEPTIONLAB_NO_KERNEL does."""
    before = os.environ.pop("DECEPTIONLAB_NO_KERNEL", None)
    if not on:
        os.environ["DECEPTIONLAB_NO_KERNEL"] = "1"
    try:
        yield
    finally:
        os.environ.pop("DECEPTIONLAB_NO_KERNEL", None)
        if before is not None:
            os.environ["DECEPTIONLAB_NO_KERNEL"] = before


def bench_lab(world, members: int, steps: int, log: bool, kernel: bool = True) -> float:
    with kernel_switch(kernel):
        return _bench_lab(world, members, steps, log)


def _bench_lab(world, members: int, steps: int, log: bool) -> float:
    ds = world.datasets["train"]
    model = MLPEnsemble.init(world.input_dim, 2, WIDTH, 1, [torch.Generator().manual_seed(i) for i in range(members)])
    evaluate = ProbeEvaluator(world) if log else (lambda m: {})
    gens = [torch.Generator().manual_seed(10_000 + i) for i in range(members)]
    t = time.perf_counter()
    train(model, [Phase("training", steps, [HeadData(0, ds.x, ds.y, 1.0)])], optimizer=optimizer, **OPT[optimizer], batch_size=B,
          data_generators=gens, log_every=log_every if log else 10**9, evaluate=evaluate)
    return members / (time.perf_counter() - t) * steps / STEPS


def _lab_worker(members: int, steps: int, opt: str, kernel: bool) -> float:
    global optimizer
    optimizer = opt
    torch.set_num_threads(1)
    if not kernel:
        fused_adam()
    world = Bitworld({"situational_awareness": "off", "overseer_model": False})
    bench_lab(world, 8, 20, log=False, kernel=kernel)  # warm up outside the timing
    return bench_lab(world, members, steps, log=False, kernel=kernel)


def bench_lab_processes(members: int, steps: int, workers: int, kernel: bool = True) -> float:
    """The lab's local executor layout: `workers` processes, one torch thread each, one chunk each."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_lab_worker, [8] * workers, [2] * workers, [optimizer] * workers, [kernel] * workers))  # start and warm
        t = time.perf_counter()
        list(pool.map(_lab_worker, [members] * workers, [steps] * workers, [optimizer] * workers, [kernel] * workers))
        # each worker's own warm-up is inside this window, so this slightly understates the rate
        return workers * members / (time.perf_counter() - t) * steps / STEPS


def bench_sequential(world, runs: int, steps: int) -> float:
    ds = world.datasets["train"]
    t = time.perf_counter()
    for r in range(runs):
        torch.manual_seed(r)
        net = torch.nn.Sequential(torch.nn.Linear(world.input_dim, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 1))
        opt = torch_optimizer(net.parameters())
        g = torch.Generator().manual_seed(r)
        for _ in range(steps):
            idx = torch.randint(len(ds.x), (B,), generator=g)
            loss = torch.nn.functional.softplus(-ds.y[idx] * net(ds.x[idx]).squeeze(-1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return runs / (time.perf_counter() - t) * steps / STEPS


def bench_vmap(world, members: int, steps: int) -> float:
    from torch.func import functional_call, grad, stack_module_state, vmap

    ds = world.datasets["train"]
    nets = [torch.nn.Sequential(torch.nn.Linear(world.input_dim, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 1)) for _ in range(members)]
    params, _ = stack_module_state(nets)
    params = {k: v.detach().requires_grad_(False) for k, v in params.items()}
    base = nets[0].to("meta")

    def loss(p, x, y):
        return torch.nn.functional.softplus(-y * functional_call(base, p, (x,)).squeeze(-1)).mean()

    g_fn = vmap(grad(loss))
    opt = torch_optimizer(list(params.values()))
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(len(ds.x), (members, B), generator=g)
        grads = g_fn(params, ds.x[idx], ds.y[idx])
        for k, v in params.items():
            v.grad = grads[k]
        opt.step()
    return members / (time.perf_counter() - t) * steps / STEPS


def bench_jax(world, members: int, steps: int) -> float | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    ds = world.datasets["train"]
    X, Y = jnp.asarray(ds.x.numpy()), jnp.asarray(ds.y.numpy())
    key = jax.random.PRNGKey(0)
    n_in = world.input_dim

    def init(k):
        ks = jax.random.split(k, 6)
        u = lambda k, shape, fan: jax.random.uniform(k, shape, minval=-1 / fan**0.5, maxval=1 / fan**0.5)
        return [u(ks[0], (n_in, WIDTH), n_in), u(ks[1], (WIDTH,), n_in), u(ks[2], (WIDTH, WIDTH), WIDTH), u(ks[3], (WIDTH,), WIDTH), u(ks[4], (WIDTH, 1), WIDTH), u(ks[5], (1,), WIDTH)]

    def loss(p, x, y):
        h = jax.nn.relu(x @ p[0] + p[1])
        h = jax.nn.relu(h @ p[2] + p[3])
        return jnp.mean(jax.nn.softplus(-y * (h @ p[4] + p[5])[:, 0]))

    def step(p, m, v, t, idx):
        g = jax.grad(loss)(p, X[idx], Y[idx])
        if optimizer == "sgd":
            m = [0.9 * a + b for a, b in zip(m, g)]
            return [w - 0.05 * a for w, a in zip(p, m)], m, v
        m = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
        v = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
        p = [w - 1e-3 / (1 - 0.9**t) * a / (jnp.sqrt(b / (1 - 0.999**t)) + 1e-8) for w, a, b in zip(p, m, v)]
        return p, m, v

    vstep = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None, 0)))
    p = jax.vmap(init)(jax.random.split(key, members))
    m = [jnp.zeros_like(a) for a in p]
    v = [jnp.zeros_like(a) for a in p]
    idx_all = jax.random.randint(key, (steps, members, B), 0, len(ds.x))
    p, m, v = vstep(p, m, v, 1.0, idx_all[0])  # compile
    jax.block_until_ready(p)
    t = time.perf_counter()
    for s in range(steps):
        p, m, v = vstep(p, m, v, float(s + 2), idx_all[s])
    jax.block_until_ready(p)
    return members / (time.perf_counter() - t) * steps / STEPS


def bench_roofline(members: int) -> float:
    """FLOP/s of the model's largest batched matmul, (N, 32, 64) x (N, 64, 64), on its own: the best
    of 10 rounds of 50 (this machine is shared; the best round is the machine, the rest is noise)."""
    a, w = torch.randn(members, B, WIDTH), torch.randn(members, WIDTH, WIDTH)
    for _ in range(20):
        torch.bmm(a, w)
    best = 0.0
    for _ in range(10):
        t = time.perf_counter()
        for _ in range(50):
            torch.bmm(a, w)
        best = max(best, 50 * 2 * members * B * WIDTH * WIDTH / (time.perf_counter() - t))
    return best


def best_of(n: int, fn, *args, **kw) -> float:
    return max(fn(*args, **kw) for _ in range(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizer", choices=list(OPT), default="sgd", help="the optimiser every program uses")
    ap.add_argument("--members", type=int, default=256, help="ensemble size for the lab, vmap and JAX")
    ap.add_argument("--steps", type=int, default=STEPS, help="steps the lab trains (peers: fewer, scaled)")
    ap.add_argument("--log-every", type=int, default=200, help="steps between trajectory checkpoints in the logged run (the flagship's: 200)")
    ap.add_argument("--no-peers", action="store_true", help="only the lab (kernel and torch path) against the roofline")
    args = ap.parse_args()
    global optimizer, log_every
    optimizer, log_every = args.optimizer, args.log_every
    world = Bitworld({"situational_awareness": "off", "overseer_model": False})
    flops = model_step_flops(world.input_dim)
    print(f"optimizer={optimizer} {OPT[optimizer]} threads={torch.get_num_threads()} members={args.members} "
          f"model-step={flops / 1e6:.2f} MFLOP; runs/s for {STEPS}-step runs")
    from deceptionlab.train import train_kernel

    has_kernel = train_kernel.load() is not None  # compiles it on first use, outside the timings
    if not has_kernel:
        print("  (no training kernel: no C compiler, or DECEPTIONLAB_NO_KERNEL is set; the torch path only)")
    fused_adam()  # compile outside the timings (it happens once per process)
    bench_lab(world, 8, 20, log=False, kernel=False)
    bench_lab(world, 8, 20, log=False, kernel=has_kernel)

    # the lab first: JAX leaves its thread pool behind, and the peers' allocations fragment memory
    results = {}
    roof = bench_roofline(args.members)
    print(f"  batched-matmul roofline ((N,32,64)x(N,64,64))   {roof / 1e9:8.1f} GFLOP/s", flush=True)
    paths = ([("kernel", True)] if has_kernel else []) + [("torch", False)]
    for name, on in paths:  # alternated, so that both see the same load
        results[f"lab_{name}"] = bench_lab(world, args.members, args.steps, log=False, kernel=on)
    for name, on in paths:
        results[f"lab_{name}"] = max(results[f"lab_{name}"], bench_lab(world, args.members, args.steps, log=False, kernel=on))
    for name, _ in paths:
        print(f"  deceptionlab trainer, {name + ' path,':13s} ({args.members} x {args.steps} steps) {results[f'lab_{name}']:8.2f} runs/s", flush=True)
    lab = "lab_kernel" if has_kernel else "lab_torch"
    for name, on in paths:
        results[f"proc_{name}"] = best_of(2, bench_lab_processes, args.members, args.steps, workers=2, kernel=on)
        print(f"  deceptionlab, 2 processes x 1 thread, {name} path      {results[f'proc_{name}']:8.2f} runs/s", flush=True)
    results["lab_logged"] = bench_lab(world, args.members, args.steps, log=True, kernel=has_kernel)
    print(f"  deceptionlab + probe logging every {log_every} steps        {results['lab_logged']:8.2f} runs/s", flush=True)
    if not args.no_peers:
        results["sequential"] = best_of(2, bench_sequential, world, runs=1, steps=300)
        print(f"  sequential (plain PyTorch, 1 run x 300 steps, scaled) {results['sequential']:8.2f} runs/s", flush=True)
        results["vmap"] = best_of(2, bench_vmap, world, args.members, steps=100)
        print(f"  torch.func vmap(grad) ({args.members} x 100 steps, scaled) {results['vmap']:8.2f} runs/s", flush=True)
        jax_rate = bench_jax(world, args.members, steps=args.steps)
        if jax_rate is None:
            print("  jax vmap+jit                                  not installed (pip install jax to compare)")
        else:
            results["jax"] = jax_rate
            print(f"  jax vmap+jit ({args.members} x {args.steps} steps)              {jax_rate:8.2f} runs/s", flush=True)
    roof = max(roof, bench_roofline(args.members))  # again, after the runs: the better of the two
    print(f"  roofline, best of before and after               {roof / 1e9:8.1f} GFLOP/s")
    print("ratios:")
    if has_kernel:
        print(f"  kernel / torch path = {results['lab_kernel'] / results['lab_torch']:.2f}x (1 process), "
              f"{results['proc_kernel'] / results['proc_torch']:.2f}x (2 processes)")
    if not args.no_peers:
        print(f"  lab / sequential = {results[lab] / results['sequential']:.1f}x   (target >= 20x)")
        print(f"  lab / vmap       = {results[lab] / results['vmap']:.1f}x")
        if "jax" in results:
            print(f"  lab / jax        = {results[lab] / results['jax']:.2f}x  (target >= 1)")
    for name, _ in paths:
        for layout, key in (("1 process  ", f"lab_{name}"), ("2 processes", f"proc_{name}")):
            f = results[key] * STEPS * flops
            print(f"  {name:6s} path, {layout}: {f / 1e9:6.1f} GFLOP/s = {f / roof:4.0%} of the roofline (target >= 50%)")
    print(f"  logging cost     = {1 - results['lab_logged'] / results[lab]:.0%} of training throughput")


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    main()
