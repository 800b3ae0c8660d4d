# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance
#
# How much of each paper this book can reproduce is bounded by GPU minutes, and adversarial
# training costs 3 to 12 times standard training, so the speed of the attack-plus-train step
# multiplies everything else. `advbook bench` measures it: images per second (each training
# image counted once per epoch) for standard training, FGSM-RS and PGD-10 adversarial
# training, for this library's `fit` and for a reference loop written the common way (a
# `DataLoader` over float tensors, fp32, torchattacks' FFGSM or PGD, a loss read back every
# step), side by side in one run on the same machine.
#
# Our loop's fast path, each trick explicit in `advbook.train.fit`: the training set lives on
# the GPU as uint8 and is batched by indexing; random crop and flip run batched on the GPU;
# normalization is the model's first layer; bf16 autocast for the attack and the training
# step with fp32 master weights; channels_last activations; a fused SGD step; and no host
# synchronization inside the step loop (metrics accumulate on the device and are read once
# per epoch). `torch.compile` is behind the `compile` option and off by default until a
# benchmark shows it pays for its compile time.
#
# The same fast path serves a CPU. Where the CPU computes bf16 in hardware (AMX or
# AVX512-BF16, as on the machine of the CPU records below), oneDNN runs the bf16 convolutions
# natively, and channels_last is the layout its convolutions prefer. On a CPU without bf16
# hardware (AVX2 only), bf16 is emulated, and training ran 5 to 7 times slower than fp32 on the
# machines the book's cpu profiles are now computed on (timed by hand; no bench record holds
# it). So the cpu profiles train in fp32 (`advbook.chapters.CPU_PRECISION`; evaluation is
# always fp32); on a CPU with bf16 hardware, run them with `-p precision bf16` for the rates
# below.
# Small models also use two cores better as two trainings, one thread each, than as one
# training split over two threads, whose per-operation work is too small to share out: on 2
# cores, compute two chapters at once with `OMP_NUM_THREADS=1` each (the README shows how).
#
# The targets, read against the stored benchmark records (the first three on one GPU, the
# last on 2 CPU cores), not checked by tests. Each line below the list reads one target
# against one GPU record, naming the record, its device and its commit; the CPU target is read
# under each CPU record further down. The GPU records were computed elsewhere (`advbook bench`
# on a GPU machine) and brought in with `advbook import`, which checks every record against
# its schema.

# %% tags=["parameters"]
profile = "smoke"   # the page renders stored benchmark records; the profile changes nothing here
overrides = {}

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from advbook.chapters.performance import (TARGETS, cpu_target_lines, describe, fp32_trick_lines, gpu_target_lines,
                                          gpu_ttr_lines, missing, on_gpu, records, speedup_figure,
                                          throughput_figure, throughput_table)

bench, ttr = records("bench"), records("time-to-robustness")
display(Markdown("\n".join(f"- {t}" for t in TARGETS)))
readings = gpu_target_lines(bench, ttr)
if readings:
    met, missed = (sum(line.count(f"**{word}**") for line in readings) for word in ("met", "missed"))
    display(Markdown(f"**Read against the GPU records:** {met} of {met + missed} numbers meet their target.\n\n"
                     + "\n".join(f"- {line}" for line in readings)))
gaps = missing(bench, ttr)
if gaps:
    display(Markdown("> **Still missing, so no speed claim is made on this page:**\n>\n"
                     + "\n".join(f"> - {g}" for g in gaps)))

# %% [markdown]
# ## Throughput
#
# One table per stored benchmark record. `speed-up` is ours over the reference in the same
# run; `% of peak` compares the achieved FLOP rate with the device's own measured dense
# matmul rate (bf16 on a GPU, fp32 on a CPU). FLOPs per image count one training step,
# attack included (a forward and backward pass measured with torch's FLOP counter, plus
# $2\times$ the forward FLOPs for each attack gradient step). A CPU record made with
# `--quick` only checks that the benchmark runs: its shapes are tiny and its speeds mean
# nothing for a GPU. The bars show the same numbers on a log scale: the gap between a pair of
# bars is the speed-up.
#
# A CPU record made with the current benchmark also times our loop with one trick at a time
# (`fp32 only`: our loop with no trick; `channels_last only`: fp32 in channels_last), so each
# trick's share of the speed-up is visible, and the machine's rate when as many trainings as
# cores run at once, one process and one thread each, for ours and for the reference
# (`machine speed-up` divides ours at once by the reference run the common way, one training
# on every core). Its figure shows each variant's speed-up over the reference; the line at 1
# is the reference. `torch.compile` is not among the tricks on a CPU: it was timed (`advbook
# bench --compile`, the earlier one-thread record below) no faster than eager on these small
# models, and slower for adversarial training.
#
# channels_last keeps fp32's arithmetic and changes only the memory layout, so the cpu profiles
# adopt it for the models they train from now on (BIPARO's C6 runs are the first). The
# models already stored keep plain fp32. The trick is part of a model's training settings, so
# switching it on for them would change their keys and retrain them all, and that is left
# for the next full recompute of the store. Training several seeds as one grouped network
# (about 1.5x per model in a prototype) is not built: it is not a trick `fit` has.

# %% tags=["hide-input"]
for record in bench:
    display(Markdown(describe(record)))
    if not record["quick"] and record["rows"][0].get("ours_by_trick_images_per_s"):  # a CPU record
        display(Markdown("\n".join(f"- {line}" for line in cpu_target_lines(record) + fp32_trick_lines(record))))
        display(throughput_table(record))
        display(speedup_figure(record))
    else:
        display(throughput_table(record))
        display(throughput_figure(record))
    plt.close("all")

# %% [markdown]
# ## Time to robustness
#
# FGSM-RS with the recipe of Wong et al. (2020): PreActResNet-18, 15 epochs, cyclic learning
# rate up to 0.2, $\alpha = 10/255$, $\epsilon = 8/255$, on CIFAR-10 (JPEG q75 copy); then PGD-50
# with 10 restarts on the whole test set. Wong et al. report 46 % robust accuracy after 12
# minutes on their GPU, on the original CIFAR-10, with batch 128; `advbook bench
# --time-to-robustness` trains with batch 512 on a GPU (the record says which). The wall time
# counts everything from loading the data to the last robust prediction; the evaluation's
# share is the wall time less the training time.

# %% tags=["hide-input"]
for record in ttr:
    display(Markdown(f"`{record['file']}`: {record['dataset']}, {record['device']}, commit {record['commit']}"
                     + (" — **quick CPU check on digits, not the recipe**" if record["quick"] else "")
                     + f": clean {100 * record['clean_acc']:.2f} %, {record['eval']['attack']} "
                       f"{100 * record['robust_acc']:.2f} %, {record['wall_seconds']:.0f} s wall "
                       f"({record['train_seconds']:.0f} s of it loading the data and training, "
                       f"batch {record['train'].get('batch_size')})"))
    if on_gpu(record):
        display(Markdown("\n".join(f"- {line}" for line in gpu_ttr_lines(record))))

# %% [markdown]
# ## References
#
# - Eric Wong, Leslie Rice and J. Zico Kolter. *Fast is better than free: Revisiting adversarial training*. ICLR, 2020. [arXiv:2001.03994](https://arxiv.org/abs/2001.03994)

# %% [markdown]
# ## Code, data and how to rerun
#
# The executed notebook and every number on this page as CSV (one row per evaluation, with the
# record keys and commits that produced it), the library functions the page calls, linked to
# their source, and how to run the notebook yourself.

# %% tags=["hide-input"]
import pandas as pd

from advbook import bench as bench_code, reporting
from advbook.train import fit

table = pd.concat([throughput_table(r).assign(record=r["file"], commit=r.get("commit")) for r in bench]) if bench \
    else pd.DataFrame()
reporting.for_researchers("performance", [], [fit, bench_code.ours, bench_code.reference, bench_code.flops_per_image,
                                              bench_code.time_to_robustness], results=table.to_csv(index=False),
                          profile="smoke")
