"""How throughput grows with workers: runs per second of the local executor (1 and 2 workers) and of
Ray (a local instance), and what each costs per chunk, measured in one run on the same spec.

Throughput: the flagship's 8 conditions (bitworld, 2x64 MLPs, Adam, 1,500 or 2,000 steps, up to three
heads, probes every 200 steps) with `--seeds` seeds each, so 8 chunks of uneven cost, run into a fresh
results folder by each executor; wall clock from the call to the last stored chunk, worker start-up
included. `--chunk-size` cuts the chunks finer. Every executor must store the same runs with the same
verdicts and scores (checked).

Overhead per chunk: `--tiny` chunks of one run and 10 steps (a few ms of work) through each executor;
start-up is the wait for the first result; the steady cost per chunk is the time between later results
times the number of workers, minus what the same chunk takes in this process on one thread.

    python benchmarks/bench_scale.py [--seeds 64] [--chunk-size N] [--tiny 40] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tomllib

import torch

import deceptionlab
from deceptionlab.sweep import Local, RayCluster, parse_spec, run_experiment
from deceptionlab.sweep.experiment import plan, train_chunk

CORES = os.cpu_count() or 1


def flagship(seeds: int, **changes):
    with open("experiments/flagship.toml", "rb") as f:
        raw = tomllib.load(f)
    return parse_spec({**raw, "seeds": seeds, **changes}, source="flagship")


def throughput(name: str, executor, spec, chunk_size: int | None) -> tuple[float, object]:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        counts = run_experiment(spec, out, executor=executor, chunk_size=chunk_size)
        wall = time.perf_counter() - t
        runs = deceptionlab.load(out)
    rate = counts["trained"] / wall
    print(f"  {name:<40} {counts['trained']} runs in {wall:6.1f} s = {rate:6.2f} runs/s", flush=True)
    return rate, runs


def timeline(executor, chunks) -> list[float]:
    """Seconds from the call to each finished chunk."""
    t = time.perf_counter()
    return [time.perf_counter() - t for _ in executor.run(chunks, train_chunk)]


def overhead(name: str, executor, workers: int, chunks, local_chunk: float) -> tuple[float, float]:
    times = timeline(executor, chunks)
    startup = times[0] - local_chunk
    steady = (times[-1] - times[workers - 1]) / (len(times) - workers) * workers
    print(f"  {name:<40} start-up {startup:6.2f} s   per chunk {1000 * steady:7.1f} ms = in-process + {1000 * (steady - local_chunk):6.1f} ms", flush=True)
    return startup, steady - local_chunk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=64, help="seeds per condition (8 conditions)")
    ap.add_argument("--chunk-size", type=int, default=None, help="runs per chunk (default: one chunk per condition)")
    ap.add_argument("--tiny", type=int, default=40, help="trivial chunks for the overhead measurement")
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    print(f"{CORES} cores; load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    torch.set_num_threads(1)  # the overhead's baseline: a chunk as a worker trains it, on one thread

    tiny = flagship(args.tiny, sweep={}, log_every=10_000, phases=[{"name": "t", "steps": 10, "heads": {"policy": {}}}])
    chunks = [[r] for r in plan(tiny, set())[0][0]]
    train_chunk(chunks[0])  # compile and warm up this process
    t = time.perf_counter()
    for c in chunks:
        train_chunk(c)
    local_chunk = (time.perf_counter() - t) / len(chunks)
    print(f"overhead per chunk ({len(chunks)} chunks of 1 run x 10 steps; in this process, 1 thread: {1000 * local_chunk:.1f} ms each):", flush=True)
    overhead(f"local, {CORES} worker processes", Local(CORES), CORES, chunks, local_chunk)
    if not args.skip_ray:
        overhead(f"Ray, local instance ({CORES} CPUs)", RayCluster(), CORES, chunks, local_chunk)

    torch.set_num_threads(CORES)  # one process: every core's thread; workers split them
    spec = flagship(args.seeds)
    n_chunks = len(plan(spec, set(), args.chunk_size)[0])
    print(f"throughput: flagship shape, 8 conditions x {args.seeds} seeds, {n_chunks} chunks:", flush=True)
    rates = {}
    rates["local1"], ref = throughput(f"local, 1 process x {CORES} threads", Local(1), spec, args.chunk_size)
    rates["local2"], two = throughput(f"local, {CORES} processes x 1 thread", Local(CORES), spec, args.chunk_size)
    others = [two]
    if not args.skip_ray:
        rates["ray"], on_ray = throughput(f"Ray, local instance ({CORES} CPUs)", RayCluster(), spec, args.chunk_size)
        others.append(on_ray)
    cols = ["run_id", "verdict", "score_internal", "score_corrigible", "score_deceptive", "score_proxy", "train_accuracy"]
    for other in others:
        assert ref[cols].equals(other[cols]), "executors disagree"
    print("every executor stored the same runs, verdicts and scores")
    print(f"{CORES} processes / 1 process: {rates['local2'] / rates['local1']:.2f}x", end="")
    if "ray" in rates:
        print(f"; Ray / 1 process: {rates['ray'] / rates['local1']:.2f}x; Ray / {CORES} processes: {rates['ray'] / rates['local2']:.2f}x", end="")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    main()
