"""`advbook bench`: training throughput of this library's loop against a reference loop.

The reference is adversarial training written the common way: a torch DataLoader over float
tensors, fp32, torchattacks' FFGSM (FGSM-RS) or PGD, the model in train mode. Ours is
`advbook.train.fit` itself with the fast-path options (data resident on the device as uint8,
batched augmentation on the device, bf16 autocast, channels_last, fused SGD, no host sync
inside the step loop). Both train the same architecture on the same CIFAR-10-shaped data
(random pixels: throughput does not depend on the pictures) and are timed in one run.

Images per second count each training image once per epoch. FLOPs per image are counted
with torch's FlopCounterMode on one real training step of the method; achieved TFLOP/s is
that times the throughput, and its fraction of the device's measured matmul peak is printed.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data as data_mod
from . import models
from .defenses import COSTS as DEFENSE_COSTS
from .paths import BENCH
from .store import environment
from .train import fast_path
from .train import TrainConfig, fit

EPS, ALPHA_RS = 8 / 255, 10 / 255
GPU_MODELS = "preact-resnet18,resnet18"
METHODS = {
    # name: (defense in advbook.defenses, its parameters)
    "standard": ("standard", {}),
    "fgsm-rs": ("fgsm-rs", {"eps": EPS, "alpha": ALPHA_RS}),
    "pgd10": ("pgd", {"eps": EPS, "alpha": 2 / 255, "steps": 10}),
}


def add_arguments(parser) -> None:
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and few images: a CPU check of the benchmark itself (< 1 minute)")
    parser.add_argument("--models", default=None,
                        help=f"default: {GPU_MODELS} on a GPU, the cpu profiles' {CPU_MODELS} on a CPU")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", type=int, default=None, help="training images per timed epoch")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--no-reference", action="store_true", help="time our loop only")
    parser.add_argument("--compile", action="store_true",
                        help="also time our loop with torch.compile: the model on the fast path, and, alone, "
                             "the step's attack, loss and backward (compile_step)")
    parser.add_argument("--workers", type=int, default=None,
                        help="on a CPU: also time this many trainings at once, one per core (default: the cores)")
    parser.add_argument("--output", type=Path, default=None, help="JSON record (default data/bench/)")
    parser.add_argument("--time-to-robustness", action="store_true",
                        help="instead: FGSM-RS with the Wong et al. (2020) recipe on cifar10-jpeg, then PGD-50-10")
    parser.add_argument("--data-root", default=None, help="folder holding the offline dataset files")


def synthetic_cifar(n: int, size: int, seed: int = 0, channels: int = 3) -> data_mod.Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return data_mod.Dataset("synthetic", f"random {size}x{size} RGB", x, y, x[:0], y[:0],
                            tuple(map(str, range(10))), "bench", None)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_tflops(device: torch.device, quick: bool) -> tuple[float, str]:
    """Measured dense matmul throughput in the fast path's type: bf16 where the device computes
    it natively (a GPU, a CPU with AMX or AVX512-BF16), else fp32."""
    dtype = torch.bfloat16 if native_bf16(device) else torch.float32
    n = 8192 if device.type == "cuda" else (512 if quick else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps = 20 if device.type == "cuda" else 3
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12, str(dtype).replace("torch.", "")


# (channels, side) of the digit models the cpu profiles train; every other model sees 32x32 RGB
INPUT_SHAPES = {"std-cnn": (1, 28), "lenet5": (1, 28)}
CPU_MODELS = "std-cnn,lenet5,small-cnn"  # the cpu profiles' models (small-cnn: a BasicNet-size CNN)


def input_shape(model_name: str, size: int) -> tuple[int, int]:
    return INPUT_SHAPES.get(model_name, (3, size))


def _build(model_name: str, size: int, width):
    channels, side = input_shape(model_name, size)
    return models.build(model_name, 10, channels, mean=(0.45,) * channels, std=(0.25,) * channels,
                        image_size=side, width=width)


def flops_per_image(model, method: str, shape: tuple[int, int], device: torch.device) -> float:
    """FLOPs per image of one training step of `method`, attack included.

    Measured: F, the forward FLOPs, and T, a forward plus backward with weight gradients
    (FlopCounterMode). Estimated: an attack step (forward plus backward to the input only) as
    2F, the usual rule that a backward to the activations costs about one forward.
    """
    from torch.utils.flop_counter import FlopCounterMode

    channels, side = shape
    x = torch.rand(8, channels, side, side, device=device)
    y = torch.randint(0, 10, (8,), device=device)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(x)
    forward = counter.get_total_flops() / 8
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    training_pass = counter.get_total_flops() / 8
    defense, params = METHODS[method]
    return training_pass + DEFENSE_COSTS[defense](params).attack * 2 * forward  # an attack pass: about 2 forwards


def ours(model_name, method, dataset, batch_size, device, width, tricks: dict, compile: bool = False,
         ready=None) -> float:
    """Images per second of `fit` with the training flags `tricks` (one timed epoch after a
    warm-up epoch, which also compiles). `ready()`, if given, is called between the two."""
    defense, params = METHODS[method]
    flags = {"drop_last": compile, **tricks}
    cfg = TrainConfig(defense=defense, defense_params=params, epochs=1, batch_size=batch_size, lr=0.1,
                      schedule="constant", augment=dataset.in_channels == 3, compile=compile, **flags)
    torch.manual_seed(0)
    model = _build(model_name, dataset.image_size, width)
    warmup = dataset.subset(min(len(dataset.y_train), 4 * batch_size), 0)
    fit(model, warmup, cfg, device=device, progress=False)  # cuDNN autotuning, allocator warm-up
    _sync(device)
    if ready:
        ready()
    start = time.perf_counter()
    fit(model, dataset, cfg, device=device, progress=False)
    _sync(device)
    return len(dataset.y_train) / (time.perf_counter() - start)


def reference(model_name, method, dataset, batch_size, device, width, ready=None) -> float:
    """Images per second of the common way: DataLoader, fp32, torchattacks, train mode."""
    import torchattacks
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = _build(model_name, dataset.image_size, width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    _, params = METHODS[method]
    attack = None
    if method == "fgsm-rs":
        attack = torchattacks.FFGSM(model, eps=params["eps"], alpha=params["alpha"])
    elif method == "pgd10":
        attack = torchattacks.PGD(model, eps=params["eps"], alpha=params["alpha"], steps=params["steps"])
    x = dataset.x_train.float() / 255
    loader = DataLoader(TensorDataset(x, dataset.y_train), batch_size=batch_size, shuffle=True)

    def epoch(limit=None):
        model.train()
        for i, (xb, yb) in enumerate(loader):
            if limit is not None and i >= limit:
                break
            xb, yb = xb.to(device), yb.to(device)
            if xb.shape[1] == 3:  # the usual augmentation for RGB images, per batch on the device
                xb = data_mod.augment_crop_flip(xb)
            if attack is not None:
                xb = attack(xb, yb)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the common per-step logging read: a host sync every step

    epoch(limit=4)
    _sync(device)
    if ready:
        ready()
    start = time.perf_counter()
    epoch()
    _sync(device)
    return len(dataset.y_train) / (time.perf_counter() - start)


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 in hardware: every GPU the book targets, and CPUs with
    AVX512-BF16 or AMX (oneDNN then runs bf16 convolutions natively; elsewhere it emulates them,
    slower than fp32)."""
    if device.type != "cpu":
        return True
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def _per_core_worker(which, args, tricks, barrier, results):
    torch.set_num_threads(1)
    model_name, method, n_images, side, channels, batch_size, width = args
    dataset = synthetic_cifar(n_images, side, channels=channels)
    ready = barrier.wait
    if which == "ours":
        speed = ours(model_name, method, dataset, batch_size, torch.device("cpu"), width, tricks, ready=ready)
    else:
        speed = reference(model_name, method, dataset, batch_size, torch.device("cpu"), width, ready=ready)
    results.put(speed)


def per_core(which: str, args: tuple, tricks: dict, workers: int) -> float:
    """Images per second of the whole machine when `workers` trainings run at once, one process
    and one thread each (as two `advbook compute` runs with OMP_NUM_THREADS=1 do): each process warms
    up, all start their timed epoch together, and the machine's rate is every image trained
    over the time the slowest took. Small models use two cores better this way than one
    training with two threads, whose per-operation work is too small to split."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_per_core_worker, args=(which, args, tricks, barrier, results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    speeds = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return workers * min(speeds)  # every process trains as many images: the slowest sets the time


def time_to_robustness(device: torch.device, quick: bool, data_root=None) -> dict:
    """Wong et al. (2020): PreActResNet-18, FGSM-RS (alpha 10/255, eps 8/255), 15 epochs of a
    cyclic learning rate up to 0.2; then PGD-50 with 10 restarts on the test set. The wall
    time counts everything from loading the data to the last robust prediction.
    `quick`: digits, a narrow CNN, 3 epochs, PGD-10 with 2 restarts, for a CPU check."""
    from .evaluate import accuracy, robust_accuracy
    from .attacks import pgd

    start = time.perf_counter()
    if quick:
        dataset, model_name, width, epochs, eps, steps, restarts = data_mod.load("digits"), "small-cnn", 16, 3, 0.1, 10, 2
        batch = 128
    else:
        dataset = data_mod.load("cifar10-jpeg", data_root)
        model_name, width, epochs, eps, steps, restarts, batch = "preact-resnet18", None, 15, 8 / 255, 50, 10, 512
    fast = device.type == "cuda"
    cfg = TrainConfig(defense="fgsm-rs", defense_params={"eps": eps, "alpha": 1.25 * eps}, epochs=epochs,
                      batch_size=batch, lr=0.2, schedule="cyclic", augment=not quick, seed=0,
                      precision="bf16" if fast else "fp32", channels_last=fast,
                      cudnn_benchmark=fast, drop_last=fast)
    mean, std = dataset.channel_stats()
    torch.manual_seed(0)
    model = models.build(model_name, dataset.num_classes, dataset.in_channels, mean=mean, std=std,
                         image_size=dataset.image_size, width=width)
    history = fit(model, dataset, cfg, device=device, progress=None)
    train_seconds = time.perf_counter() - start
    clean = accuracy(model, dataset.x_test, dataset.y_test, device=device)  # evaluation: fp32
    robust = robust_accuracy(model, dataset.x_test, dataset.y_test, pgd, device=device,
                             batch_size=2000 if fast else 500, eps=eps, alpha=2 / 255 if not quick else eps / 4,
                             steps=steps, restarts=restarts)
    _sync(device)
    return {"kind": "time-to-robustness", "quick": quick, "dataset": dataset.display_name,
            "dataset_sha256": dataset.sha256, "model": model_name, "train": asdict(cfg), "history": history,
            "eval": {"attack": f"PGD-{steps}, {restarts} restarts", "eps": eps, "n": len(dataset.y_test)},
            "clean_acc": clean, "robust_acc": robust, "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - start,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **environment(device)}


def _write(record: dict, output: Path) -> None:
    """Write the record atomically; an earlier record at that path is kept beside it, dated."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        earlier = json.loads(output.read_text()).get("created", "undated").replace(":", "")
        kept = output.with_name(f"{output.stem}.{earlier}.json")
        output.replace(kept)
        print(f"kept the earlier record as {kept}")
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(output)
    print(f"wrote {output}")


def main(args) -> int:
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    quick = args.quick
    suffix = f"{device.type}{'-quick' if quick else ''}"
    if args.time_to_robustness:
        record = time_to_robustness(device, quick, args.data_root)
        print(f"{record['dataset']}: clean {100 * record['clean_acc']:.2f}%, {record['eval']['attack']} "
              f"{100 * record['robust_acc']:.2f}% in {record['wall_seconds']:.0f} s wall on {record['device']}")
        _write(record, args.output or BENCH / f"time-to-robustness-{suffix}.json")
        return 0
    size = 16 if quick else 32
    width = 8 if quick else None
    cpu = device.type == "cpu" and not quick
    # on a CPU, the cpu profiles' own models and batch size, and a 2,560-image timed epoch
    n_images = args.images or (256 if quick else 2_560 if cpu else 50_000)
    batch_size = args.batch_size or (64 if quick else 128 if cpu else 512)
    if n_images < batch_size:
        raise SystemExit("advbook bench: --images must be at least --batch-size")
    model_names = [m for m in (args.models or (CPU_MODELS if cpu else GPU_MODELS)).split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"advbook bench: unknown method '{m}'; known: {', '.join(METHODS)}")
    for m in model_names:
        if m not in models.ARCHITECTURES:
            raise SystemExit(f"advbook bench: unknown model '{m}'")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1) if cpu else 0
    if workers < 0 or (workers and device.type != "cpu"):
        raise SystemExit("advbook bench: --workers is a CPU measurement and needs a count of 0 or more")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
    # the fast path is bf16 with channels_last, on a GPU and on a CPU that computes bf16 natively
    fast = fast_path("bf16") if native_bf16(device) else {"channels_last": True}
    # on a CPU, also our loop with no trick, and with channels_last alone (each short of the fast path)
    variants = {"fp32": {}, "channels_last": {"channels_last": True}} if device.type == "cpu" else {}
    if args.compile:  # the step captured (train.compile_step), alone; full batches: one shape
        variants["compile_step"] = {"compile_step": True, "drop_last": True}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # was the machine busy?
    peak, peak_dtype = matmul_peak_tflops(device, quick)
    rows = []
    print(f"device: {environment(device)['device']}; matmul peak {peak:.1f} TFLOP/s ({peak_dtype}); "
          f"{n_images} images a timed epoch, batch {batch_size}; fast path {fast}")
    for model_name in model_names:
        channels, side = input_shape(model_name, size)
        dataset = synthetic_cifar(n_images, side, channels=channels)
        probe = _build(model_name, side, width).to(device)
        for method in methods:
            flops = flops_per_image(probe, method, (channels, side), device)
            speed = ours(model_name, method, dataset, batch_size, device, width, fast)
            ref = None if args.no_reference else reference(model_name, method, dataset, batch_size, device, width)
            compiled = ours(model_name, method, dataset, batch_size, device, width, fast,
                            compile=True) if args.compile else None
            by_trick = {name: ours(model_name, method, dataset, batch_size, device, width, tricks)
                        for name, tricks in variants.items() if tricks != fast}
            job = (model_name, method, n_images, side, channels, batch_size, width)
            machine = per_core("ours", job, fast, workers) if workers else None
            machine_ref = per_core("reference", job, {}, workers) if workers and ref else None
            achieved = flops * speed / 1e12
            row = {"model": model_name, "input": f"{channels}x{side}x{side}", "method": method,
                   "ours_images_per_s": speed,
                   "ours_by_trick_images_per_s": by_trick,
                   "ours_compiled_images_per_s": compiled,
                   "compiled_speedup": compiled / ref if compiled and ref else None,
                   "reference_images_per_s": ref, "speedup": speed / ref if ref else None,
                   "workers": workers or None,
                   "ours_per_core_images_per_s": machine,
                   "reference_per_core_images_per_s": machine_ref,
                   "machine_speedup": machine / ref if machine and ref else None,
                   "epoch_seconds_50k": 50_000 / speed, "gflops_per_image": flops / 1e9,
                   "achieved_tflops": achieved, "fraction_of_peak": achieved / peak}
            rows.append(row)
            print(f"{model_name:16s} {method:9s} ours {speed:9.0f} img/s"
                  + "".join(f"  {name} {v:7.0f}" for name, v in by_trick.items())
                  + (f"  compiled {compiled:9.0f} img/s" if compiled else "")
                  + (f"  reference {ref:9.0f} img/s  speed-up {speed / ref:5.2f}x" if ref else "")
                  + (f"  {workers} at once: ours {machine:7.0f}" if machine else "")
                  + (f" reference {machine_ref:7.0f} img/s  machine speed-up {machine / ref:5.2f}x"
                     if machine_ref else "")
                  + f"  {flops / 1e9:6.3f} GFLOP/img  {achieved:7.3f} TFLOP/s ({100 * achieved / peak:.1f}% of peak)",
                  flush=True)
    record = {"kind": "bench", "quick": quick, "image_size": size, "images": n_images, "batch_size": batch_size,
              "threads": torch.get_num_threads(), "workers": workers or None, "load_average_at_start": load,
              "model_width": width, "fast_path": fast,
              "matmul_peak_tflops": peak, "matmul_peak_dtype": peak_dtype, "rows": rows,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **environment(device)}
    _write(record, args.output or BENCH / f"bench-{suffix}.json")
    return 0
