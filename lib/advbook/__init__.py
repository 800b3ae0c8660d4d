"""advbook: the library behind the adversarial-training reproducibility book.

Modules, one concept each, from the bottom up (tests/test_architecture.py holds the floors):
- `paths`, `device`, `errors`, `atomic`: folders, the device and its precision, the one-line
  errors, the one atomic writer;
- `data` (datasets by file name), `published` (the papers' identity and numbers, data/papers/),
  `claims` (the verdict rule and its guards), `schema` (record shapes);
- `models`, `attacks`, `defenses` (registries with their call contracts), `checks` (sanity checks
  run before every evaluation);
- `train` (`TrainConfig`, `fit`), `evaluate` (attack specs, evaluation in eval mode and fp32);
- `store` (records and keys), then `experiments` (a config in, a record out; `CONFIG_FIELDS`),
  `masking` (the one masking checklist), `reference_mnist` (a reference loop beside ours);
- `reporting`, `verdicts` (tables, figures, What holds), `bench` (speed), `notebooks`
  (executing a chapter's notebook);
- `chapters` (what each chapter runs and claims);
- `cli` (parsing and dispatch), `sweeps`, `planning`, `engines`, `window`, `exchange`, `audit`.
"""
__version__ = "0.1.0"
