import json

from advbook.cli import main


def test_quick_cpu_bench_writes_a_complete_record(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--quick", "--models", "resnet18", "--methods", "standard,pgd10",
                 "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["device"].startswith("CPU") and record["matmul_peak_tflops"] > 0
    assert [r["method"] for r in record["rows"]] == ["standard", "pgd10"]
    standard, pgd = record["rows"]
    for row in record["rows"]:
        assert row["ours_images_per_s"] > 0 and row["reference_images_per_s"] > 0
        assert row["speedup"] == row["ours_images_per_s"] / row["reference_images_per_s"]
    # PGD-10 costs about ten more gradient passes than standard training
    assert 5 < pgd["gflops_per_image"] / standard["gflops_per_image"] < 12
    assert "speed-up" in capsys.readouterr().out


def test_bench_refuses_unknown_methods(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="unknown method"):
        main(["bench", "--device", "cpu", "--quick", "--methods", "magic", "--output", str(tmp_path / "b.json")])
