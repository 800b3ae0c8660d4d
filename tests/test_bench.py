import json

from advbook.cli import main


def test_quick_cpu_bench_writes_a_complete_record(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--quick", "--models", "resnet18", "--methods", "standard,pgd10",
                 "--workers", "2", "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["device"].startswith("CPU") and record["matmul_peak_tflops"] > 0
    assert [r["method"] for r in record["rows"]] == ["standard", "pgd10"]
    standard, pgd = record["rows"]
    for row in record["rows"]:
        assert row["ours_images_per_s"] > 0 and row["reference_images_per_s"] > 0
        assert row["speedup"] == row["ours_images_per_s"] / row["reference_images_per_s"]
        # two trainings at once, one process each: the machine's rate, beside the one-training reference
        assert row["workers"] == 2 and row["ours_per_core_images_per_s"] > 0 and row["reference_per_core_images_per_s"] > 0
        assert row["machine_speedup"] == row["ours_per_core_images_per_s"] / row["reference_images_per_s"]
        assert set(row["ours_by_trick_images_per_s"]) <= {"fp32", "channels_last"}  # the fast path is the headline
    # PGD-10 costs about ten more gradient passes than standard training
    assert 5 < pgd["gflops_per_image"] / standard["gflops_per_image"] < 12
    assert "speed-up" in capsys.readouterr().out


def test_bench_refuses_unknown_methods(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="unknown method"):
        main(["bench", "--device", "cpu", "--quick", "--methods", "magic", "--output", str(tmp_path / "b.json")])


def test_quick_time_to_robustness_records_accuracy_and_wall_time(tmp_path):
    out = tmp_path / "ttr.json"
    assert main(["bench", "--device", "cpu", "--quick", "--time-to-robustness", "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["kind"] == "time-to-robustness" and record["quick"] is True
    assert 0 <= record["robust_acc"] <= record["clean_acc"] <= 1 and record["clean_acc"] > 0.5
    assert record["wall_seconds"] >= record["train_seconds"] > 0
    assert len(record["history"]) == record["train"]["epochs"]


def test_performance_page_names_missing_gpu_numbers():
    from advbook.chapters import performance

    cpu_quick = {"device": "CPU (x86_64, 2 threads)", "quick": True}
    gpu = {"device": "NVIDIA H100 80GB HBM3", "quick": False}
    assert len(performance.missing([cpu_quick], [])) == 2
    assert len(performance.missing([gpu], [gpu])) == 0


def test_each_fp32_trick_is_read_against_plain_fp32_per_model_and_method():
    """The Performance page's fp32 line: a trick's speed over our plain fp32 loop, the range over
    the methods that model was timed with, and only those: catches a gain read against the
    reference loop or another model's row."""
    from advbook.chapters.performance import fp32_trick_lines

    rows = [{"model": "a", "method": "pgd10", "ours_by_trick_images_per_s": {"fp32": 100.0, "channels_last": 150.0}},
            {"model": "a", "method": "standard", "ours_by_trick_images_per_s": {"fp32": 200.0, "channels_last": 240.0}},
            {"model": "b", "method": "pgd10", "ours_by_trick_images_per_s": {"fp32": 10.0, "channels_last": 20.0}}]
    assert fp32_trick_lines({"rows": rows}) == [
        "channels_last alone over plain fp32: a 1.20x to 1.50x (pgd10, standard); b 2.00x to 2.00x (pgd10)"]
