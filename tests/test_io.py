import pytest

from fer.io import atomic_path, write_json


def test_a_crash_mid_write_leaves_the_old_file_and_no_debris(tmp_path):
    target = tmp_path / "metrics.json"
    write_json({"accuracy": 0.5}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp, open(tmp, "w") as f:
            f.write('{"accuracy": 0.9')  # half written
            raise RuntimeError("killed")
    assert target.read_text() == '{\n  "accuracy": 0.5\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
