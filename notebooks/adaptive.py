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
# # Adaptive adversarial training (Kamath, Deshpande and Subrahmanyam 2019)
#
# **Paper:** Sandesh Kamath, Amit Deshpande and K. V. Subrahmanyam. *Better Generalization with Adaptive Adversarial Training*. ICML 2019 Workshop on Understanding and Improving Generalization in Deep Learning, 2019. [search the title](https://scholar.google.com/scholar?q=Better+Generalization+with+Adaptive+Adversarial+Training)
#
# **The claim.** Perturbing every training sample makes a network robust but costs clean
# accuracy. Kamath et al. propose to perturb only a few samples each epoch, chosen where the
# loss is steepest, and report that this keeps clean accuracy within 0.5 points of standard
# training, gives robustness to PGD comparable to perturbing every sample, and is faster.
#
# **The method (their Algorithm 1).** At the start of every epoch, for all $T$ training
# samples, take the gradient of the loss with respect to the input, $g_i = \nabla_x
# \mathcal{L}(f_\theta(x_i), y_i)$, and set
#
# $$p_i = \frac{g'_i}{\sum_{j=1}^{T} g'_j}, \qquad g'_i = \|g_i\|_2 \;\text{(norm)} \quad\text{or}\quad g'_i = \|g_i\|_2^2 \;\text{(squared norm)}.$$
#
# Draw $n$ samples from $P$, replace each drawn $x_i$ by its FGSM perturbation
# $x_i + \epsilon\,\mathrm{sign}(g_i)$ (clipped to $[0, 1]$), and train the epoch on that set.
# Budgets: $\epsilon = 0.3$ for MNIST and Fashion-MNIST, $0.02$ for CIFAR-10.
# The code is `advbook.defenses.perturb_epoch` and `adaptive_selection`.
#
# **Where the paper is vague, and what we chose.**
# - *Drawing $n$ samples*: the paper draws "n samples from probability distribution P" and
#   calls $K$ "the set of indices". We read this as $n$ i.i.d. draws (with replacement), $K$
#   the distinct indices drawn, so fewer than $n$ samples may be perturbed (many fewer when
#   the squared norm concentrates the draws: the table below shows how many); the parameter
#   `replacement` switches to draws without replacement.
# - *Cost*: the FGSM perturbation $x_i + \epsilon\,\mathrm{sign}(g_i)$ reuses the gradient of
#   the sampling pass, so an adaptive epoch costs one input-gradient pass over the training set
#   plus training, the same as perturbing every sample at the start of the epoch.
# - *Augmentation on CIFAR-10*: the perturbations are computed once per epoch on the
#   un-augmented images; random crop and flip are then applied to the perturbed image, so the
#   trained-on image is a shifted copy of an FGSM image (still inside the $\epsilon$ ball).
# - *Which mode the gradients are taken in*: eval mode (no dropout; batch norm with running
#   statistics), once at the start of the epoch, with the model as it stands.
# - *Every sample perturbed* (the baseline): the same algorithm with $K$ = all samples, the
#   perturbations fixed at the start of the epoch; the appendix baseline uses PGD the same way.
# - *Optimizer, learning rate, batch size*: not given. SGD with momentum 0.9, weight decay
#   $5\cdot10^{-4}$, a cosine schedule, batch 128 (see `advbook list` for the values).
# - *The test-time PGD*: steps and step size are not given. PGD-20 with step $2.5\epsilon/20$.
# - *Splits*: the paper's (55k/5k/10k for MNIST, 40k/10k/10k for CIFAR-10); the validation
#   split is held out and unused, as the paper does not say what it was used for.

# %% tags=["parameters"]
profile = "smoke"   # smoke | cpu | fast | paper
overrides = {}      # any chapter parameter, e.g. {"sample_sizes": [50, 500]}; see `advbook list`

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from advbook import deciding, planning, reporting
from advbook.chapters.adaptive import (CHAPTER, appendix_curves, baselines, claims, clean_vs_count, masking_checks,
                                       results_table, robustness_curves, takeaways)

settings, records, rows, judged = reporting.open_page(CHAPTER, profile, overrides, planner=planning)

# %% [markdown]
# Every baseline against the paper's settings, for the profile this page was run with:

# %% tags=["hide-input"]
display(Markdown(reporting.baselines_markdown(baselines(settings))))

# %% [markdown]
# ## Robustness against the PGD budget (the paper's Figures 1 to 3)
#
# One row per dataset; left, samples drawn by gradient norm, right, by squared norm. Each
# line is a training variant: no perturbed samples (`none`), $n$ samples per epoch, or every
# sample perturbed (`all FGSM`). Mean over seeds with a ±1 standard deviation band. The
# paper's claim (3) is that the adaptive lines sit near the `all FGSM` line. Read the right end
# too: on a $[0, 1]$ image a large enough budget breaks any classifier, so a line that flattens
# above zero at large $\epsilon$ means PGD has stopped finding the adversarial examples that
# exist there (gradient masking), not that the model is robust.

# %% tags=["hide-input"]
panels = robustness_curves(settings, records)
if not panels:
    display(reporting.no_data("figure"))
else:
    fig, axes = plt.subplots(len(panels), len(settings["samplings"]), squeeze=False,
                             figsize=(5.5 * len(settings["samplings"]), 3.6 * len(panels)))
    for row, (dataset, by_sampling) in zip(axes, panels.items()):
        for ax, (sampling, curves) in zip(row, by_sampling.items()):
            reporting.curve_figure(curves, "eps (L-inf)", "PGD accuracy (%)", f"{dataset}: sampling by {sampling}",
                                   ax=ax)

# %% tags=["hide-input"]
reporting.evidence_for(judged, ["3"], "Robustness against the PGD budget (the paper's Figures 1 to 3)")

# %% [markdown]
# ## Can these PGD numbers be believed? (the masking checklist)
#
# The book's one checklist (`advbook.masking`), for every model: at the largest budget of the
# sweep the accuracy must reach about 0 (a line that flattens above it means PGD stopped finding
# adversarial examples that exist), and PGD-20 must not read more than 5 points above APGD-CE at
# the budget both ran at, on the same images (a PGD that much weaker overstates robustness; claim 3
# is judged under APGD-CE for that reason).

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
display(Markdown(reporting.checklist_markdown(masking_checks(settings, records))))

# %% tags=["hide-input"]
reporting.evidence_for(judged, ["3"], "Can these PGD numbers be believed? (the masking checklist)")

# %% [markdown]
# ## Clean accuracy against the number of perturbed samples (Figure 4)
#
# From 0 perturbed samples (standard training) on the left to every sample on the right.
# Claim (1) says the adaptive points stay within 0.5 points of the left end; claim (2) says
# the right end drops 2 to 4 points on Fashion-MNIST and CIFAR-10 but less on MNIST.

# %% tags=["hide-input"]
ticks, by_dataset = clean_vs_count(settings, rows)
if not by_dataset:
    display(reporting.no_data("figure"))
else:
    fig, axes = plt.subplots(1, len(by_dataset), figsize=(5.5 * len(by_dataset), 3.6), squeeze=False)
    for ax, (dataset, curves) in zip(axes[0], by_dataset.items()):
        reporting.curve_figure(curves, "samples perturbed per epoch", "clean accuracy (%)", dataset, ax=ax,
                               xticklabels=ticks, ylim=None)

# %% tags=["hide-input"]
reporting.evidence_for(judged, ["1", "2"], "Clean accuracy against the number of perturbed samples (Figure 4)")

# %% [markdown]
# ## PGD on every sample (the paper's appendix, Figure 5)
#
# The same eps sweep for training on PGD-perturbed samples (all of them), beside the FGSM and
# no-perturbation baselines.

# %% tags=["hide-input"]
if not settings["all_pgd"]:
    display(Markdown("> **No PGD line here:** this profile does not train the every-sample PGD models "
                     "(`all_pgd` is off: they cost about ten times an FGSM run). The figure shows the two "
                     "baselines alone; `-p all_pgd true` adds the line."))
appendix = appendix_curves(records)
if not appendix:
    display(reporting.no_data("figure"))
else:
    fig, axes = plt.subplots(1, len(appendix), figsize=(5.5 * len(appendix), 3.6), squeeze=False)
    for ax, (dataset, curves) in zip(axes[0], appendix.items()):
        reporting.curve_figure(curves, "eps (L-inf)", "PGD accuracy (%)", dataset, ax=ax)

# %% [markdown]
# ## Accuracy and wall time per epoch
#
# Clean and PGD accuracy at the training budget, and the mean wall time of an epoch,
# selection and perturbation included. Perturbing needs the input gradient of every training
# sample in every epoch, for the sampling weights, so adaptive training is not free: claim (4)
# is a question of whether the saved FGSM steps outweigh that pass.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
reporting.or_no_data(results_table(settings, rows))

# %% tags=["hide-input"]
reporting.evidence_for(judged, ["1", "2", "3", "4"], "Accuracy and wall time per epoch")

# %% [markdown]
# ## Claims and verdicts
#
# Each claim is judged by the book's one rule, written once in [How a verdict is decided](rule.md):
# one-sided Student-t bounds, each erring at most 5 %, on the paired per-seed differences A - B
# (shown as "mean [lower, upper]", the sampling of test images included), two one-sided tests for "within"
# claims, Holm's correction before a claim of several parts is refuted, and the guards that can
# leave a comparison inconclusive, each named in its reason. *Untestable as stated* marks a claim
# that no experiment can decide in the form the paper states it. The methods and words are in the
# [glossary](glossary.md).
#
# The last column says how we made each claim operational: the thresholds are the paper's own
# words where it gives numbers; for "comparable" robustness we say what we take it to mean. Claim
# (4), about cost, is judged on measured epoch time and on counted gradient passes together: the
# count shows whether a speed-up is possible at all.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
reporting.show_claims(judged, settings, records,
                      by_scale=reporting.claims_by_scale(CHAPTER, settings, overrides))
deciding.show(CHAPTER.name, judged, settings)

# %% [markdown]
# ## What to take from this page
#
# Computed from the numbers above (means over seeds) and the verdicts; in a smoke run the models
# and data are too small for them to mean anything.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
display(Markdown(reporting.bullets_markdown(takeaways(settings, rows, judged), "list of conclusions")))

# %% [markdown]
# ## The plan against the measurement
#
# Minutes a model, its training and every evaluation: what the planner (`advbook compute --dry-run`,
# from the committed bench records, at the threads each model ran on) expected, against the wall
# time its records measured. A ratio far from 1 says how far this chapter's estimates can be
# trusted (models timed while the machine was shared run slower than planned).

# %% tags=["hide-input"]
reporting.or_no_data(pd.DataFrame(planning.planned_against_measured(CHAPTER.experiments(settings), records)))

# %% [markdown]
# ## Code, data and how to rerun
#
# The executed notebook and every number on this page as CSV (one row per evaluation, with the
# record keys and commits that produced it), the library functions the page calls, linked to
# their source, and how to run the notebook yourself.

# %% tags=["hide-input"]
from advbook.defenses import adaptive_selection, perturb_epoch
from advbook.evaluate import evaluate_spec
from advbook.train import fit

reporting.for_researchers("adaptive", records, [adaptive_selection, perturb_epoch, fit, evaluate_spec, claims])
