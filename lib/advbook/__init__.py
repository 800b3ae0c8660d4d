"""advbook: the library behind the adversarial-training reproducibility book.

Modules, one concept each: `data`, `models`, `attacks`, `defenses`, `train`, `evaluate`,
`experiments` (config in, record out), `results` (the store), `published` (papers' numbers),
`reporting` (tables, figures, verdicts), `chapters` (what each chapter runs), `cli`.
"""
__version__ = "0.1.0"
