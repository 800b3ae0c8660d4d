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
# # Audit your own model
#
# A robust accuracy is only as good as the attack that measured it. Published numbers keep
# falling when someone re-evaluates them with a stronger attack (RobustBench lists 31 of 99
# CIFAR-10 L-inf entries that lost more than a point under AutoAttack), and the usual cause is
# *gradient masking*: a model whose input gradients point nowhere useful, so that gradient
# attacks fail while the model is not robust at all.
#
# `advbook audit` puts any checkpoint through this book's evaluation, offline: clean accuracy,
# FGSM, best-iterate PGD with restarts, APGD-CE, AutoAttack at its published strength, a
# transfer attack from a surrogate, an eps sweep, EOT versions for a randomized model, the
# per-image worst case over all of them, and the masking checklist, each line saying what it
# checked, what it saw and whether it passed:
#
# ```
# advbook audit --arch std-cnn --weights model.pt --dataset mnist --eps 0.3 --output audit/
# advbook audit --model mynet:build --weights model.pt --dataset cifar10-jpeg --eps 8/255 --output audit/
# ```
#
# It writes `audit/report.html` (readable offline) and `audit/report.json` (every number, the
# versions, the device, the wall time) and touches nothing else. This page shows it on three
# networks the primer trained, audited on the very images the primer attacked them on.

# %% tags=["parameters"]
profile = "smoke"   # smoke | cpu: the primer's networks of that profile
overrides = {}      # any chapter parameter, e.g. {"levels": 4}; `advbook list` shows them all

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from advbook import planning, reporting
from advbook.chapters.auditing import (AUDITED, CHAPTER, accuracy_table, checklist_table, failures, missing,
                                       provenance, reports, reproduction, sweep_figure)

settings, records, rows, judged = reporting.open_page(CHAPTER, profile, overrides, planner=planning)
found = reports(settings)
gaps = missing(settings, found)
if gaps:
    display(Markdown("**Not audited yet:**\n\n" + "\n".join(f"- {line}" for line in gaps)))

# %% [markdown]
# ## Three networks, three expectations
#
# The same architecture and data, audited at the primer's budget:

# %% tags=["hide-input"]
display(Markdown("\n".join(f"- **{a.label(settings)}**: {a.expect}." for a in AUDITED)))

# %% [markdown]
# ## What every attack reads
#
# Accuracy in percent of the audited images. A network counts as robust on an image only if
# every attack, under every seed, leaves it classified right: the last row, the per-image
# worst case, is the number to report.

# %% tags=["hide-input"]
table = accuracy_table(settings, found)
display(Markdown(reporting.markdown_table(table) if not table.empty else reporting.no_data_text("audit")))
display(Markdown(provenance(settings, found)))

# %% [markdown]
# ## The masking checklist
#
# Each check is a symptom of masking or of an attack that did not converge: robust accuracy
# above clean, an eps sweep that never reaches zero, AutoAttack above PGD or PGD far above
# AutoAttack, a transfer attack stronger than the white-box one, input gradients that are zero
# or not finite. A failed check does not say the network is not robust; it says not to believe
# the gradient attacks' number for it.

# %% tags=["hide-input"]
table = checklist_table(settings, found)
display(Markdown(reporting.markdown_table(table) if not table.empty else reporting.no_data_text("audit")))
display(Markdown("\n\n".join(failures(settings, found))))

# %% [markdown]
# ## Accuracy against eps
#
# A sound network's curve falls to zero as the budget grows past anything a classifier can
# withstand; a masked one's stays up, because the attack, not the network, has stopped.

# %% tags=["hide-input"]
if any(found.values()):
    figure = sweep_figure(settings, found)
else:
    display(Markdown(reporting.no_data_text("audit")))

# %% [markdown]
# ## The audit reproduces the primer's numbers
#
# Where the audit runs an attack exactly as the primer's evaluation ran it (same attack and
# parameters, same images, same seed), it must find the same number of images classified
# right. The primer's records keep that count, not which images, so the count is what is
# compared.

# %% tags=["hide-input"]
table = reproduction(settings, records, found)
display(Markdown(reporting.markdown_table(table.set_index("network")) if not table.empty
                 else reporting.no_data_text("reproduction")))
