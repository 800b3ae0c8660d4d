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
# # Primer: adversarial training in four recipes
#
# All five papers in this book start from the same ground: a classifier $f_\theta$ is
# *robust* at an input $x$ with label $y$ if no perturbation $\delta$ inside a small ball,
# $\|\delta\|_\infty \le \epsilon$, changes its prediction. Pixels live in $[0, 1]$ and
# $\epsilon$ is measured on that scale ($8/255$ is the usual CIFAR-10 budget).
# Adversarial training (Madry et al. 2018) makes a network robust by solving
#
# $$\min_\theta \; \mathbb{E}_{(x,y)} \Big[ \max_{\|\delta\|_\infty \le \epsilon} \mathcal{L}(f_\theta(x+\delta), y) \Big].$$
#
# The four recipes below differ only in how they approximate the inner maximum:
#
# | recipe | inner maximization | cost per batch |
# | --- | --- | --- |
# | Standard | none: $\delta = 0$ | 1 forward-backward |
# | FGSM-AT (Goodfellow et al. 2015) | $\delta = \epsilon\,\mathrm{sign}(\nabla_x \mathcal{L})$ | 2 |
# | FGSM-RS (Wong et al. 2020) | $\delta_0 \sim U(-\epsilon,\epsilon)$, one step of size $\alpha = 1.25\,\epsilon$, clipped | 2 |
# | PGD-AT (Madry et al. 2018) | $k$ steps of $\delta \leftarrow \Pi_\epsilon(\delta + \alpha\,\mathrm{sign}(\nabla_\delta \mathcal{L}))$, $\alpha = 2.5\epsilon/k$ | $k+1$ |
#
# We then attack every trained model with the same suite: FGSM, PGD with the
# cross-entropy loss, PGD with the Carlini-Wagner margin loss, torchattacks' own PGD (as a
# cross-check of ours) and AutoAttack (Croce and Hein 2020), the standard strong
# evaluation. A model counts as robust on an image only if it classifies both the clean
# and the attacked image correctly.
#
# The code for all of this lives in the `advbook` library (`advbook.attacks`,
# `advbook.defenses`, `advbook.train`, `advbook.evaluate`); this page only asks for the
# results and shows them.

# %% tags=["parameters"]
profile = "smoke"   # smoke | cpu | fast | paper
overrides = {}      # any chapter parameter, e.g. {"eps": 0.05}; `advbook list` shows them all

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from advbook import masking, planning, reporting
from advbook.chapters.primer import (AA_IMAGES, CHAPTER, DEFENSE_ORDER, LABELS, METRIC_LABELS, fgsm_rs_reference,
                                     masking_checks, fgsm_rs_reference_cifar, takeaways)

settings, records, rows, judged = reporting.open_page(CHAPTER, profile, overrides, planner=planning)

# %% [markdown]
# The four recipes as this page trained them, against Wong et al.'s (2020) CIFAR-10 settings:

# %% tags=["hide-input"]
from advbook.chapters.primer import baselines

display(Markdown(reporting.baselines_markdown(baselines(settings))))

# %% [markdown]
# ## Clean and robust accuracy
#
# Each row is one training recipe; each cell is the mean ± standard deviation over the
# training seeds, in percent of the evaluated test images (AutoAttack runs on a smaller
# subset of them, and only for the first seeds: see the provenance above and `advbook list`).
# A gap between the FGSM column and the PGD columns is the first sign of *gradient masking*:
# a model that only looks robust to a single gradient step. The last two columns are the
# robust accuracy to read: per image, the worst case of FGSM, both PGDs and torchattacks' PGD
# (an image counts only if every one of them leaves it right), and the same over every attack
# at this eps, AutoAttack and the sweeps among them, on AutoAttack's images.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print(f"eps = {settings['eps']:.4f}, PGD-{settings['eval_steps']} with {settings['restarts']} restart(s), "
      f"{settings['n_eval']} test images, AutoAttack on {settings['autoattack_n']}")
metrics = ["clean", "fgsm", "pgd", "pgd-cw", "autoattack", "robust", AA_IMAGES]
reporting.or_no_data(reporting.seed_table(rows, "defense", metrics, order=[LABELS[d] for d in DEFENSE_ORDER],
                                          labels=METRIC_LABELS))

# %% [markdown]
# ## Robust accuracy against the budget
#
# Every curve starts at the model's clean accuracy ($\epsilon = 0$) and must fall to zero as
# $\epsilon$ grows: an image can be turned into any other image with a large enough budget.
# A curve that flattens above zero at large $\epsilon$ would mean the attack, not the model,
# is failing. The vertical line marks the training budget.

# %% tags=["hide-input"]
label = lambda r: LABELS[r["config"]["train"]["defense"]]
fig = reporting.curve_figure(reporting.sweep_curves(records, "eps_sweep", label),
                             "eps (L-inf, pixels in [0, 1])", "robust accuracy (%)",
                             f"PGD-{settings['eval_steps']} accuracy against the budget")
fig.axes[0].axvline(settings["eps"], color="grey", linestyle=":");

# %% [markdown]
# ## Robust accuracy against PGD iterations
#
# The step size stays at $2.5\epsilon/k_{\mathrm{eval}}$ while the number of iterations grows,
# so the first few iterations cannot even reach the edge of the ball. More iterations, from
# the same random start, can only find more adversarial examples: our PGD keeps, per image,
# the first iterate that fools the model. The useful
# reading is the shape: a model with honest gradients is broken within tens of iterations and
# the curve flattens; one whose accuracy keeps sliding at hundreds of iterations is hiding
# its gradients, and a single-step attack would have badly overestimated its robustness.

# %% tags=["hide-input"]
fig = reporting.curve_figure(reporting.sweep_curves(records, "steps_sweep", label),
                             "PGD iterations", "robust accuracy (%)", f"PGD at eps = {settings['eps']:.4f}",
                             logx=True)

# %% [markdown]
# ## Our PGD beside torchattacks' PGD
#
# The same model, the same budget, step size and number of iterations, attacked by
# `advbook.attacks.pgd` and by `torchattacks.PGD`. Ours returns, per image, the best iterate
# found; torchattacks returns the last one, so ours should be as strong or slightly
# stronger (lower accuracy). A large gap either way would mean one of the two is wrong.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
reporting.or_no_data(reporting.seed_table(rows, "defense", ["pgd", "torchattacks-pgd"],
                                          order=[LABELS[d] for d in DEFENSE_ORDER],
                                          labels={"pgd": "advbook PGD", "torchattacks-pgd": "torchattacks PGD"}))

# %% [markdown]
# ## FGSM-RS as Wong et al. wrote it
#
# Wong et al.'s FGSM-RS takes FGSM's gradient at $x + \delta$ with $\delta \sim U(-\epsilon,
# \epsilon)$ and only clips the image into $[0, 1]$ after the step. Until 2026-11-28 the library
# clipped the random start into $[0, 1]$ *before* the gradient; on MNIST, whose pixels are mostly
# exactly 0 or 1, that removes most of the start's randomness and brings back the catastrophic
# overfitting the random start is there to prevent. The models on this page were computed again
# on 2026-11-29 with the start as Wong et al. wrote it. The table is the check of the fix: the reference implementation's MNIST
# recipe (its small CNN, Adam, a cyclic learning rate up to 0.005, batch 100, $\epsilon = 0.3$,
# $\alpha = 0.375$, 10 epochs), trained by their loop written out and by `advbook.train.fit`,
# and attacked by PGD-50 with 10 restarts (their evaluation), per seed.
#
# What it shows: over six seeds both loops land between 67 and 86 % under PGD-50-10 on every
# seed but one: seed 1 of ours overfits catastrophically to 0 % (seeds 3 to 5 agree within a
# point). The last row is the old library's clipped start on the same recipe: 30.7, 8.0 and
# 0.0 %, the collapse the fix removes. The two control rows explain it. Their loop
# run with fit's random draws ends at 70.7 %; with fit's draws *and* fit's floating-point
# rounding it ends at 0.0 %, the same weights as fit to the bit. So fit computes the reference
# algorithm, and whether a run of this recipe overfits catastrophically hangs on its random
# draws and even its rounding: one seed in a few does on this recipe, in either loop. A
# comparison of FGSM-RS models therefore needs more seeds than three, or a check of each model
# for catastrophic overfitting, before it decides anything; the conclusions at the end of this
# page check each seed.

# %% tags=["hide-input"]
reference = fgsm_rs_reference()
if reference is None:
    display(Markdown("The reference record (`data/reference/reference-fgsm-rs-mnist*.json`) is not here."))
else:
    display(Markdown(reporting.markdown_table(reference) + f"\n\nMeasured on {reference.attrs['provenance']}."))

# %% [markdown]
# ### The CIFAR-10 recipe, difference by difference
#
# On a GPU our CIFAR-10 FGSM-RS recipe reached 74.5 % clean and 41.0 % under PGD-50-10, where
# Wong et al. report about 85 % and 46 %. Their `CIFAR10/train_fgsm.py` differs from `fit` in
# the learning-rate schedule (torch's `CyclicLR` peaks at half of training, ours at 2/5, and by
# its default it also cycles the momentum from 0.9 down to 0.8 at the peak and back), in the
# precision (apex fp16 with fp16 weights against our bf16 autocast), the batch size (128 against
# the `fast` profile's 512, with `drop_last`) and the PreAct block's shortcut (theirs projects
# the block's input, ours its pre-activated input); the start clipped into the image, the
# attack's forward in train mode and the initialization are the same. The table trains their
# loop, written out (`advbook.reference_cifar`), and `fit` from the same initial weights on the
# same data order, and arms of their loop that each switch one difference toward ours. It is a
# narrow PreAct ResNet-18 (8 channels in the first stage) trained for 10 epochs on 5,000 images
# of the JPEG copy of CIFAR-10, on a CPU in fp32, with PGD-50-10 on the first 500 test images:
# far from the paper's scale and accuracy, a search for the differences that matter, not a
# reproduction. Rows with one seed are indicative only.
#
# What it shows: their loop and `fit` agree (paired over three seeds, -0.9 ± 0.5 points clean and
# -0.1 ± 0.4 under PGD); neither the schedule's peak, nor the momentum's cycle, nor the
# shortcut moves either number by more than about a point here. The batch size does: their loop
# at batch 512 loses 7 points of clean accuracy, and `fit` with the `fast` profile's batch 512 and
# `drop_last` 11 clean and 4 to 5 under PGD (on 5,000 images `drop_last` at 512 drops 8 % of
# every epoch; on the whole set it would drop 0.7 %). The same learning rate with four times
# fewer steps is the one difference that matters at this scale; fp16 against bf16 and the JPEG
# copy against the original images are not tested here. The ablation rows have seeds 0 and 1
# only, so compare them by their paired columns: seed 2, on which both loops end at 12 % under
# PGD, is missing from their means.

# %% tags=["hide-input"]
reference_cifar = fgsm_rs_reference_cifar()
if reference_cifar is None:
    display(Markdown("The reference record (`data/reference/reference-fgsm-rs-cifar10*.json`) is not here."))
else:
    display(Markdown(reporting.markdown_table(reference_cifar)
                     + f"\n\nMeasured on {reference_cifar.attrs['provenance']}."))

# %% [markdown]
# ## Checks that must hold
#
# The book's one masking checklist (`advbook.masking`, the same in every chapter, with its
# tolerances stated there). Three checks follow from how the evaluation is built, so a
# violation is a bug, not a finding, and the cell fails on one: robust accuracy never exceeds
# clean accuracy, more PGD iterations never raise it, and an attack with $\epsilon = 0$ changes
# nothing. The others are signs of gradient masking: PGD above FGSM, a budget sweep that does not
# reach about 0 %, AutoAttack above PGD on the same images, and PGD far above AutoAttack on the
# same images (a PGD number that overstates robustness). Two numbers measured on different images
# are not compared ("n/a"). A flagged model is named under the table.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
checks = masking_checks(settings, records)
problems = masking.violations(checks)
assert not problems, problems
display(Markdown(reporting.checklist_markdown(checks)))

# %% [markdown]
# ## What to take from this page
#
# The recipes' roles: standard training gives no robustness; FGSM-AT can look robust to FGSM
# while PGD breaks it (*catastrophic overfitting*, Wong et al. 2020); FGSM-RS adds a random start
# and a step of $1.25\epsilon$, which Wong et al. report is enough to match PGD-AT at the cost of
# FGSM-AT; PGD-AT is the reference recipe the other chapters compare against. Whether each
# holds in the run on this page is computed from its numbers below (means over seeds); in a
# smoke run (see the provenance) the models and data are too small for them to mean much.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
display(Markdown(reporting.bullets_markdown(takeaways(settings, rows), "list of conclusions")))

# %% [markdown]
# ## References
#
# - Ian J. Goodfellow, Jonathon Shlens and Christian Szegedy. *Explaining and Harnessing Adversarial Examples*. ICLR, 2015. [arXiv:1412.6572](https://arxiv.org/abs/1412.6572)
# - Aleksander Madry, Aleksandar Makelov, Ludwig Schmidt, Dimitris Tsipras and Adrian Vladu. *Towards Deep Learning Models Resistant to Adversarial Attacks*. ICLR, 2018. [arXiv:1706.06083](https://arxiv.org/abs/1706.06083)
# - Eric Wong, Leslie Rice and J. Zico Kolter. *Fast is better than free: Revisiting adversarial training*. ICLR, 2020. [arXiv:2001.03994](https://arxiv.org/abs/2001.03994)
# - Francesco Croce and Matthias Hein. *Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks* (AutoAttack). ICML, 2020. [arXiv:2003.01690](https://arxiv.org/abs/2003.01690)

# %% [markdown]
# ## Code, data and how to rerun
#
# The executed notebook and every number on this page as CSV (one row per evaluation, with the
# record keys and commits that produced it), the library functions the page calls, linked to
# their source, and how to run the notebook yourself.

# %% tags=["hide-input"]
from advbook.attacks import fgsm, pgd
from advbook.defenses import fgsm_at, fgsm_rs, pgd_at, standard
from advbook.evaluate import evaluate_spec
from advbook.train import fit

reporting.for_researchers("primer", records, [standard, fgsm_at, fgsm_rs, pgd_at, fgsm, pgd, fit, evaluate_spec,
                                              takeaways])
