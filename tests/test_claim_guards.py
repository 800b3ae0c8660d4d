"""The guards in front of the verdict rule (advbook.claims): each test fails when its guard is
removed (checked by deleting the guard's lines)."""
import pytest

from advbook import claims
from advbook.chapters import get
from advbook.errors import ParameterError
from advbook.claims import CONFIRMED, FACT, INCONCLUSIVE, NOT_CONFIRMED, SHOWN, Claim


def _row(variant, seed, value, *, metric="pgd", clean=0.9, images="test subset 500 (seed {seed}), first 500, attack seed 0"):
    # each seed on its own test images (the sampling of images is in the seeds' spread): the rule's
    # image term is tested on its own in test_rule.py
    images = images.format(seed=seed)
    return {"variant": variant, "seed": seed, metric: value, "clean": clean if metric != "clean" else value,
            "model_clean": clean, "chance": 0.1, "learned_floor": None,
            "images": {metric: images, "clean": images}}


def _rows(a_values, b_values, **kwargs):
    b_kwargs = {k[2:]: v for k, v in kwargs.items() if k.startswith("b_")}
    a_kwargs = {k: v for k, v in kwargs.items() if not k.startswith("b_")}
    return ([_row("A", s, v, **a_kwargs) for s, v in enumerate(a_values)] +
            [_row("B", s, v, **{**a_kwargs, **b_kwargs}) for s, v in enumerate(b_values)])


def test_cells_measured_on_different_images_are_refused():
    rows = _rows([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], b_images="test subset 500 (seed 0), first 200, attack seed 0")
    with pytest.raises(claims.MismatchedImages, match="'A pgd'.*first 500.*'B pgd' on.*first 200"):
        claims.diffs(rows, "A", "B", "pgd")
    # a different attack seed is a different measurement too
    rows = _rows([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], b_images="test subset 500 (seed 0), first 500, attack seed 1")
    with pytest.raises(claims.MismatchedImages):
        claims.diffs(rows, "A", "B", "pgd")
    # the same images pair as before
    assert claims.diffs(_rows([0.5, 0.6, 0.7], [0.4, 0.5, 0.6]), "A", "B", "pgd") == pytest.approx([10, 10, 10])


def test_images_of_a_record_name_subset_count_and_seed():
    sweep_point = {"name": "eps_sweep:0.1", "attack": "pgd", "params": {"eps": 0.1}, "seed": 3,
                   "sweep": {"name": "eps_sweep", "value": 0.1}}
    record = {"config": {"evaluate": [sweep_point]}, "evaluations": {
        "pgd": {"test": {"test": 500, "seed": 0}, "spec": {"attack": "pgd", "n": 200}, "result": {"n": 200}},
        "clean": {"test": {"test": 500, "seed": 0}, "spec": {"attack": "clean"}, "result": {"n": 500}},
        "eps_sweep:0.1": {"test": None, "spec": {"attack": "pgd", "seed": 3}, "result": {"n": 100}}}}
    images = claims.images_of(record)
    assert images["pgd"] != images["clean"]
    assert "first 200" in images["pgd"] and "first 500" in images["clean"]
    assert images["eps_sweep 0.1"] == images["eps_sweep:0.1"] and "attack seed 3" in images["eps_sweep 0.1"]


def test_a_model_that_did_not_learn_decides_nothing():
    greater = Claim("A above B", "", "greater", paper_effect=5.0)
    learned = _rows([0.50, 0.52, 0.51], [0.30, 0.31, 0.29])
    assert claims.judge(greater, claims.diffs(learned, "A", "B", "pgd")).verdict == CONFIRMED
    collapsed = _rows([0.50, 0.52, 0.51], [0.10, 0.10, 0.10], b_clean=0.105)  # B at chance
    j = claims.judge(greater, claims.diffs(collapsed, "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "did not learn" in j.reason and "B pgd seed 0" in j.reason
    # the chapter's own floor counts too
    floored = [dict(r, learned_floor=0.95) for r in learned]
    assert claims.judge(greater, claims.diffs(floored, "A", "B", "pgd")).verdict == INCONCLUSIVE


def test_no_refutation_at_a_floor():
    greater = Claim("A above B", "", "greater", paper_effect=3.0)
    at_floor = _rows([0.003, 0.004, 0.003], [0.006, 0.007, 0.006])  # A below B beyond 2 SE, both near 0 %
    j = claims.judge(greater, claims.diffs(at_floor, "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "floor" in j.reason
    away = _rows([0.30, 0.31, 0.30], [0.40, 0.41, 0.40])
    assert claims.judge(greater, claims.diffs(away, "A", "B", "pgd")).verdict == NOT_CONFIRMED
    # an effect larger than what the levels allow: half of 66 points does not fit beside 7 %
    big = Claim("A above B", "", "greater", paper_effect=66.0)
    j = claims.judge(big, claims.diffs(_rows([0.07, 0.07, 0.08], [0.06, 0.07, 0.07]), "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "half the paper's effect" in j.reason
    # at a ceiling, with no paper number: the book's floor of 2 points
    plain = Claim("A above B", "", "greater")
    j = claims.judge(plain, claims.diffs(_rows([0.985, 0.986, 0.985], [0.99, 0.991, 0.99]), "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "floor or ceiling" in j.reason


def test_a_baseline_that_never_became_robust_decides_nothing():
    """Ours above a baseline the paper shows robust, but which sits at 0 % here, says nothing about
    the paper's baseline; a baseline above the floor on one seed is not at the floor."""
    vs_baseline = Claim("A above the baseline", "", "greater", paper_effect=5.0, baseline="PGD-AT")
    floored = _rows([0.30, 0.31, 0.32], [0.0, 0.01, 0.0])
    j = claims.judge(vs_baseline, claims.diffs(floored, "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "PGD-AT did not become robust" in j.reason
    # the guard is the claim's: the same numbers against a side that is not a baseline decide
    assert claims.judge(Claim("A above B", "", "greater", paper_effect=5.0),
                        claims.diffs(floored, "A", "B", "pgd")).verdict == CONFIRMED
    one_up = _rows([0.30, 0.31, 0.32], [0.0, 0.01, 0.10])
    assert claims.judge(vs_baseline, claims.diffs(one_up, "A", "B", "pgd")).verdict == CONFIRMED


def test_a_within_confirmation_that_a_floor_forces_is_inconclusive():
    within = Claim("drop within 14", "", "within", margin=14.0)
    # a model at 12 % clean and 3 % robust cannot drop by more than 12 points
    rows = [dict(_row("M", s, v, metric="pgd", clean=0.30), clean=0.12) for s, v in enumerate([0.03, 0.02, 0.03])]
    j = claims.judge(within, claims.diffs(rows, "M", "M", "clean", "pgd"))
    assert j.verdict == INCONCLUSIVE and "forced" in j.reason
    rows = [dict(_row("M", s, v, metric="pgd", clean=0.30), clean=0.40) for s, v in enumerate([0.30, 0.31, 0.30])]
    assert claims.judge(within, claims.diffs(rows, "M", "M", "clean", "pgd")).verdict == CONFIRMED


def test_identical_in_every_seed_is_no_evidence_and_facts_are_not_judged():
    less = Claim("A below B", "", "less", paper_effect=5.0)
    same = _rows([0.4, 0.5, 0.45], [0.4, 0.5, 0.45])
    j = claims.judge(less, claims.diffs(same, "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "identical in every seed" in j.reason
    seconds = claims.judge(less, [-1.0, -1.2, -0.9])
    whole = claims.all_of([("seconds", seconds), ("passes", claims.fact("equal by design"))])
    assert whole.verdict == CONFIRMED and "equal by design" in whole.reason
    assert claims.all_of([("passes", claims.fact("equal by design"))]).verdict == INCONCLUSIVE
    shown = claims.shown([1.0, 2.0, 3.0], "overhead")
    assert shown.verdict == SHOWN and claims.all_of([("a", seconds), ("b", shown)]).verdict == CONFIRMED
    assert FACT not in claims.VERDICTS and SHOWN not in claims.VERDICTS


def test_at_most_is_non_superiority():
    at_most = Claim("no combination beats B", "", "at most", margin=0.5)
    assert claims.judge(at_most, [-0.3, -0.2, -0.25]).verdict == CONFIRMED
    assert claims.judge(at_most, [1.0, 1.1, 0.9]).verdict == NOT_CONFIRMED
    assert claims.judge(at_most, [0.3, -0.2, 0.5]).verdict == INCONCLUSIVE


@pytest.mark.parametrize("chapter", ["primer", "biparo", "efgsm", "random_sign", "mixture", "adaptive"])
def test_repeated_seeds_are_refused_before_any_work(chapter):
    with pytest.raises(ParameterError, match="repeats"):
        get(chapter).settings("smoke", seeds=[0, 0])


def test_wall_times_decide_only_on_a_machine_known_not_to_be_oversubscribed():
    idle = {"device": "CPU (x86_64, 1 threads)", "load": 0.4, "cpus": 2}
    assert claims.untimed([{"timing": idle}, {"timing": idle}]) is None
    assert "load" in claims.untimed([{"timing": idle}, {"timing": {**idle, "load": None}}])
    assert "cannot rule them out" in claims.untimed([{"timing": idle}, {"timing": {**idle, "load": 3.1}}])
    assert "different devices" in claims.untimed([{"timing": idle}, {"timing": {**idle, "device": "H200"}}])


def test_wall_times_read_what_other_processes_ran_over_the_load_at_start():
    """A model that starts right after this process's previous one on every core reads a load of
    about the core count; what other processes ran meanwhile decides, where it was measured."""
    after_own_work = {"device": "CPU (x86_64, 2 threads)", "load": 2.1, "cpus": 2, "others": 0.02}
    assert claims.untimed([{"timing": after_own_work}] * 2) is None
    shared = {**after_own_work, "load": 0.3, "others": 1.0}
    assert "other processes kept 1.00 CPUs busy" in claims.untimed([{"timing": after_own_work}, {"timing": shared}])
    unmeasured = {**after_own_work, "others": None}
    assert "cannot rule them out" in claims.untimed([{"timing": after_own_work}, {"timing": unmeasured}])


def test_the_others_meter_counts_other_processes_and_not_its_own_work():
    """Checked against the CPU time each side actually used, not against a level of load, so that it
    holds on a machine something else keeps busy (where the difference between a run with and one
    without a neighbour can vanish: a saturated machine is busy either way)."""
    import resource
    import subprocess
    import sys
    import time

    from advbook.experiments import OthersMeter, _machine_busy_seconds

    if OthersMeter().busy is None:
        pytest.skip("the machine's busy time cannot be read here (no /proc/stat)")

    def children_cpu():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    # another process's work is counted: at least the CPU time the neighbour used
    child, started, meter = children_cpu(), time.perf_counter(), OthersMeter()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(6_000_000))"], check=True)
    others = meter.cpus() * (time.perf_counter() - started)
    neighbour = children_cpu() - child
    assert others >= 0.8 * neighbour - 0.05, (others, neighbour)
    # this process's own work is not: the machine's busy time less (most of) its own
    busy, own, started, meter = _machine_busy_seconds(), time.process_time(), time.perf_counter(), OthersMeter()
    sum(i * i for i in range(3_000_000))
    others = meter.cpus() * (time.perf_counter() - started)
    busy, own = _machine_busy_seconds() - busy, time.process_time() - own
    assert own > 0.1 and others <= busy - 0.8 * own + 0.05, (others, busy, own)


def test_random_sign_c4_is_inconclusive_when_timed_on_a_shared_machine():
    from advbook.chapters import random_sign

    s = random_sign.block(random_sign.CHAPTER.settings("cpu"), "mnist")
    def rows(timing):
        return [{"variant": v, "seed": k, "dataset": "mnist", "epoch_seconds": t + 0.01 * k, "clean": 0.9,
                 "timing": timing} for v, t in (("R", 4.0), ("FGSM", 8.0), ("base", 3.0)) for k in range(3)]
    c4r = lambda judged: next(j for c, j in judged if c.text.startswith("(C4r"))  # noqa: E731  R against FGSM
    idle = {"device": "CPU", "load": 0.2, "cpus": 2}
    assert c4r(random_sign._claims_on(s, rows(idle))).verdict == CONFIRMED
    shared = c4r(random_sign._claims_on(s, rows({**idle, "load": 2.5})))
    assert shared.verdict == INCONCLUSIVE and "cannot rule them out" in shared.reason


def test_a_declined_comparison_is_inconclusive_with_the_reason():
    rows = _rows([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], b_images="test subset 500 (seed 0), first 200, attack seed 0")
    declined = claims.diffs(rows, "A", "B", "pgd", decline=True)
    j = claims.judge(Claim("A above B", "", "greater", paper_effect=1.0), declined)
    assert j.verdict == INCONCLUSIVE and j.reason.startswith("not compared:") and "first 200" in j.reason


def test_the_floor_guard_reads_the_lower_side_whichever_it_is():
    """A well above B with B at the floor: a 'less' claim (A below B) refuted by the opposite sign could
    not have shown the paper's effect, since B has no room below it; the guard reads the lower level
    whichever side holds it."""
    less = Claim("A below B", "", "less", paper_effect=-5.0)
    rows = _rows([0.40, 0.42, 0.41, 0.40, 0.43], [0.005, 0.004, 0.006, 0.005, 0.004])
    j = claims.judge(less, claims.diffs(rows, "A", "B", "pgd"))
    assert j.verdict == INCONCLUSIVE and "floor or ceiling" in j.reason and "B pgd 0.5 %" in j.reason
    # both sides away from the floor: refuted
    rows = _rows([0.40, 0.42, 0.41, 0.40, 0.43], [0.30, 0.31, 0.29, 0.30, 0.31])
    assert claims.judge(less, claims.diffs(rows, "A", "B", "pgd")).verdict == NOT_CONFIRMED


def test_a_side_without_recorded_images_does_not_pair_with_one_that_has_them():
    rows = _rows([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    for r in rows:
        if r["variant"] == "B":
            r["images"] = {}
    with pytest.raises(claims.MismatchedImages, match="no test images"):
        claims.diffs(rows, "A", "B", "pgd")


def test_one_side_against_a_number_carries_the_sampling_of_its_images():
    """0 of 100 images in every seed does not make 'within 2 points of 0 %' certain: the images' sampling
    stays in the bound (a plain list of differences would read it as exact)."""
    within = Claim("no robustness", "", "within", margin=2.0)
    rows = _rows([0.0] * 5, [0.0] * 5, images="test split, first 100, attack seed 0")
    side = claims.by_seed(rows, "pgd", variant="A")
    j = claims.judge(within, claims.against(side, 0.0))
    assert j.verdict == INCONCLUSIVE and j.upper > 2.0 and j.images == 100
    assert claims.judge(within, [0.0] * 5).verdict == CONFIRMED   # what the plain list would have said
    rows = _rows([0.0] * 5, [0.0] * 5, images="test split, first 10000, attack seed 0")
    j = claims.judge(within, claims.against(claims.by_seed(rows, "pgd", variant="A"), 0.0))
    assert j.verdict == CONFIRMED


def test_best_minus_last_pairs_the_validation_images():
    rows = [{"variant": "A", "seed": s, "curve": [0.3, 0.5, 0.45 + 0.01 * s], "model_clean": 0.9}
            for s in range(5)]
    d = claims.best_minus_last(rows, "curve", 500, variant="A")
    assert d == pytest.approx([5.0, 4.0, 3.0, 2.0, 1.0]) and d.image_variance() > 0 and d.images() == 500


def test_a_robust_accuracy_the_masking_checklist_doubts_decides_nothing():
    """Guard 6: an upper bound read as a measurement confirms or refutes nothing; a doubt on another
    metric of the model does not hold this one."""
    greater = Claim("A more robust than B", "", "greater")
    rows = _rows([0.5, 0.6, 0.7, 0.55, 0.65], [0.2, 0.3, 0.4, 0.25, 0.35])
    assert claims.judge(greater, claims.diffs(rows, "A", "B", "pgd")).verdict == CONFIRMED
    rows[6]["not_believed"] = {"pgd": "eps sweep reaches ~0 failed (9.1 % left at eps 0.45)"}
    held = claims.judge(greater, claims.diffs(rows, "A", "B", "pgd"))
    assert held.verdict == INCONCLUSIVE and "not believed" in held.reason and "B pgd seed 1: eps sweep" in held.reason
    rows[6]["not_believed"] = {"fgsm": "PGD <= FGSM failed"}
    assert claims.judge(greater, claims.diffs(rows, "A", "B", "pgd")).verdict == CONFIRMED


def test_each_sign_of_masking_doubts_the_attacks_it_concerns():
    from advbook import masking

    flat = {"eps sweep reaches ~0": False, "largest eps 0.45: accuracy (%)": 9.1}
    assert masking.doubts(flat, "apgd") == "eps sweep reaches ~0 failed (9.1 % left at eps 0.45)"
    assert masking.doubts(flat, "pgd") and masking.doubts(flat, "autoattack")
    weak_pgd = {"PGD <= APGD-CE + 5": False, "eps sweep reaches ~0": True}
    assert masking.doubts(weak_pgd, "pgd") == "PGD <= APGD-CE + 5 failed" and masking.doubts(weak_pgd, "apgd") is None
    assert set(masking.DOUBTED) == set(masking.SIGNS_OF_MASKING)


def test_epochs_minus_epochs_reads_the_windows_it_is_given_and_nothing_else():
    """Mean over `early` less mean over `late`, paired on the validation images; a curve that lacks
    an epoch of either window is left out: catches a window that drifts to the best epoch."""
    rows = [{"variant": "A", "seed": s, "curve": [0.1, 0.9, 0.5, 0.3 + 0.01 * s, 0.2], "model_clean": 0.9}
            for s in range(5)] + [{"variant": "A", "seed": 9, "curve": [0.1, 0.9, 0.5], "model_clean": 0.9}]
    d = claims.epochs_minus_epochs(rows, "curve", 500, range(3, 5), range(5, 6), variant="A")
    assert d == pytest.approx([100 * ((0.5 + 0.3 + 0.01 * s) / 2 - 0.2) for s in range(5)])
    assert d.images() == 500 and d.a.label == "A epochs 3-4" and d.b.label == "A epoch 5"
