import numpy as np
import pytest
import timm
import torch

from fer import FerError
from fer.checkpoint import Checkpoint, load_model
from fer.models import create, data_config


@pytest.mark.parametrize("in_chans", [1, 3])
def test_output_shape_no_nan_and_every_parameter_gets_a_gradient(in_chans):
    torch.manual_seed(0)
    model = create("test_resnet", num_classes=7, in_chans=in_chans)
    x = torch.randn(4, in_chans, 32, 32)
    out = model(x)
    assert out.shape == (4, 7) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    # As timm's own tests: every parameter is reached (some start at zero gradient by design:
    # residual branches end in a zero-initialised norm layer).
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert model.fc.weight.grad.abs().sum() > 0


def test_unknown_model_name_suggests_close_ones():
    with pytest.raises(FerError, match="not a timm model; did you mean .*densenet121"):
        create("densenet12", 7)


def test_hub_weights_unreachable_says_what_to_do():
    with pytest.raises(FerError, match="train.weights=PATH.*train.pretrained=false"):
        create("test_resnet", 7, pretrained=True)


@pytest.mark.parametrize(
    "name, head", [("test_resnet", ("fc",)), ("levit_128s", ("head.", "head_dist."))]
)  # two heads, zero-started biases
def test_local_weights_file_is_loaded(tmp_path, name, head):
    # A weights file as one saved from an ImageNet model: 1000 classes; ours has 7.
    source = timm.create_model(name, num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = create(name, 7, weights=str(tmp_path / "w.pth"))
    body = {k: v for k, v in source.state_dict().items() if not k.startswith(head)}
    for k, v in body.items():
        torch.testing.assert_close(model.state_dict()[k], v)
    assert model.eval()(torch.randn(1, 3, 224, 224)).shape == (1, 7)


def test_a_first_layer_timm_cannot_make_greyscale_is_named(tmp_path):
    # timm folds a pretrained first layer to 1 channel where it can; this one's (a linear
    # patch embedding) it re-initialises, which is no fault of the file.
    name = "naflexvit_base_patch16_gap"
    torch.save(timm.create_model(name, num_classes=1000).state_dict(), tmp_path / "w.pth")
    with pytest.raises(
        FerError,
        match=r"could not fold naflexvit_base_patch16_gap's first layer "
        r"\(embeds.proj.weight\) to 1 channel.*preprocess.grayscale=false",
    ):
        create(name, 7, in_chans=1, weights=str(tmp_path / "w.pth"))


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(FerError, match="is not a file"):
        create("test_resnet", 7, weights=str(tmp_path / "nope.pth"))


def test_a_weights_file_that_holds_no_weights_is_an_error(tmp_path):
    (tmp_path / "w.pth").write_text("not weights")
    with pytest.raises(FerError, match=r"train.weights .*w.pth' could not be loaded into test_resnet"):
        create("test_resnet", 7, weights=str(tmp_path / "w.pth"))


def test_missing_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FerError, match="checkpoint .*best.pt not found"):
        load_model(tmp_path / "best.pt")


def test_greyscale_data_config_has_one_channel():
    cfg = data_config(create("test_resnet", 7, in_chans=1), size=48, channels=1)
    assert cfg["input_size"] == [1, 48, 48] and len(cfg["mean"]) == len(cfg["std"]) == 1


def test_checkpoint_rebuilds_the_model_alone(tmp_path):
    model = create("test_resnet", 3, in_chans=1)
    cfg = data_config(model, 32, 1)
    Checkpoint(
        weights=model.state_dict(), model_name="test_resnet", classes=["a", "b", "c"], data_config=cfg, epoch=4
    ).save(tmp_path / "best.pt")
    loaded, ckpt = load_model(tmp_path / "best.pt")
    x = torch.randn(2, 1, 32, 32)
    model.eval()
    torch.testing.assert_close(loaded(x), model(x))
    assert ckpt.classes == ["a", "b", "c"] and ckpt.epoch == 4


class Payload:
    """Stands in for code smuggled into a checkpoint: unpickling it would call anything."""

    def __reduce__(self):
        return (print, ("this ran while loading a checkpoint",))


def test_checkpoint_with_code_is_refused(tmp_path, capsys):
    model = create("test_resnet", 3)
    torch.save(
        {
            "model": model.state_dict(),
            "model_name": "test_resnet",
            "classes": ["a", "b", "c"],
            "data_config": data_config(model, 32, 3),
            "payload": Payload(),
        },
        tmp_path / "evil.pt",
    )
    with pytest.raises(FerError, match="refusing to load"):
        load_model(tmp_path / "evil.pt")
    assert "this ran" not in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["random bytes", "cut short"])
def test_a_file_torch_cannot_read_is_named_unreadable_not_unsafe(tmp_path, damage):
    # train.init_from at a failed download used to be refused as "more than weights and plain
    # data", which sends the user looking for pickled code
    model = create("test_resnet", 3)
    Checkpoint(
        weights=model.state_dict(),
        model_name="test_resnet",
        classes=["a", "b", "c"],
        data_config=data_config(model, 32, 3),
    ).save(tmp_path / "best.pt")
    whole = (tmp_path / "best.pt").read_bytes()
    (tmp_path / "init.pt").write_bytes(
        np.random.default_rng(0).bytes(5000) if damage == "random bytes" else whole[: len(whole) // 2]
    )
    with pytest.raises(FerError, match=r"init.pt is not a readable PyTorch checkpoint.*cut short") as e:
        Checkpoint.load(tmp_path / "init.pt")
    assert "refusing" not in str(e.value)


@pytest.mark.parametrize("source", ["prefixed", "another model"])
def test_a_weights_file_that_loads_nothing_is_an_error(tmp_path, source):
    # timm loads a file non-strictly (the classifier is new): keys under other names used to
    # load nothing, and training went on from random weights without a word.
    if source == "prefixed":  # as a training framework saves its wrapped model
        sd = {f"model.{k}": v for k, v in timm.create_model("test_resnet", num_classes=1000).state_dict().items()}
    else:
        sd = timm.create_model("test_vit", num_classes=1000).state_dict()
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(
        FerError,
        match=r"w.pth' holds no weights for \d+ of test_resnet's \d+ weight tensors "
        r"\(e.g. conv1.*timm's names",
    ):
        create("test_resnet", 7, weights=str(tmp_path / "w.pth"))


def test_loading_a_weights_file_leaves_the_random_stream_as_without_one(tmp_path):
    torch.save(timm.create_model("test_resnet", num_classes=1000).state_dict(), tmp_path / "w.pth")
    torch.manual_seed(3)
    create("test_resnet", 7)
    plain = torch.rand(3)
    torch.manual_seed(3)
    create("test_resnet", 7, weights=str(tmp_path / "w.pth"))
    torch.testing.assert_close(torch.rand(3), plain)


def test_a_checkpoint_whose_fields_are_not_what_they_should_be_is_named_damaged(tmp_path):
    model = create("test_resnet", 3)
    good = Checkpoint(model.state_dict(), "test_resnet", ["a", "b", "c"], data_config(model, 32, 3)).to_dict()
    torch.save({**good, "classes": "abc", "data_config": {"mean": [0.5]}}, tmp_path / "odd.pt")
    with pytest.raises(FerError, match=r"odd.pt is damaged: its classes, data_config cannot be read"):
        Checkpoint.load(tmp_path / "odd.pt")
    assert Checkpoint.from_dict(good).to_dict().keys() == good.keys()  # what is saved is what loads
