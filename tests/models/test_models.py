"""Models: shapes and unit norm for every registered model, pooling, frozen BatchNorm, pretrained."""

import pytest
import torch

from dmlviz.models import MODELS, PretrainedWeightsError, build_model
from dmlviz.models.head import GeM

INPUTS = {
    "mlp": ({"in_channels": 1, "image_size": 8}, (3, 1, 8, 8)),
    "convnet": ({"in_channels": 1}, (3, 1, 28, 28)),
    "resnet18": ({"in_channels": 3}, (2, 3, 32, 32)),
    "resnet50": ({"in_channels": 1}, (2, 1, 32, 32)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_gives_unit_norm_embeddings(name):
    torch.manual_seed(0)
    kwargs, shape = INPUTS[name]
    model = build_model(name, embedding_dim=16, **kwargs)
    out = model(torch.randn(*shape))
    assert out.shape == (shape[0], 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(shape[0]))
    groups = model.backbone_parameters() + model.head_parameters()
    assert {id(p) for p in groups} == {id(p) for p in model.parameters() if p.requires_grad}


def test_unknown_model_and_bad_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match="model='vit'.*mlp, convnet, resnet18, resnet50 or timm:"):
        build_model("vit")
    with pytest.raises(ValueError, match="pooling='mean'.*gem, avg, max"):
        build_model("convnet", pooling="mean")
    with pytest.raises(ValueError, match="embedding_dim=0"):
        build_model("convnet", embedding_dim=0)
    with pytest.raises(ValueError, match="needs image_size"):
        build_model("mlp")
    with pytest.raises(ValueError, match="ImageNet weights exist for resnet18, resnet50 and timm"):
        build_model("convnet", pretrained=True)


@pytest.mark.parametrize("pooling", ["gem", "avg", "max"])
def test_poolings(pooling):
    model = build_model("convnet", embedding_dim=8, in_channels=3, pooling=pooling)
    assert model(torch.randn(2, 3, 40, 40)).shape == (2, 8)


def test_gem_interpolates_between_average_and_max():
    x = torch.rand(2, 5, 4, 4) + 0.1
    gem = GeM(p=1.0)
    torch.testing.assert_close(gem(x), x.mean(dim=(-2, -1)))
    gem.p.data.fill_(60.0)
    torch.testing.assert_close(gem(x), x.amax(dim=(-2, -1)), rtol=0.05, atol=0.0)


def test_frozen_batchnorm_stays_fixed_in_training_mode():
    model = build_model("convnet", embedding_dim=8, in_channels=1, freeze_bn=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    model(torch.randn(4, 1, 28, 28) * 3 + 1)
    assert all(not m.training for m in norms)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, norms, strict=True))
    assert all(not p.requires_grad for m in norms for p in m.parameters())
    trainable = build_model("convnet", embedding_dim=8, in_channels=1).train()
    trainable(torch.randn(4, 1, 28, 28) * 3 + 1)
    assert not torch.equal(
        next(m for m in trainable.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean,
        torch.zeros(64),
    )


def test_layer_norm_head():
    model = build_model("mlp", embedding_dim=8, in_channels=1, image_size=8, layer_norm=True)
    assert isinstance(model.head.norm, torch.nn.LayerNorm)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 8)


def test_missing_pretrained_weights_say_where_and_how_to_continue(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: nothing is downloaded
    with pytest.raises(PretrainedWeightsError, match="--no-pretrained.*pretrained=False") as info:
        build_model("resnet18", pretrained=True)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in str(info.value)
    assert "--weights FILE" in str(info.value)
    assert isinstance(info.value, ValueError)  # the CLI reports it as a usage error


def test_cached_pretrained_weights_load_and_grey_input_sums_rgb_filters(tmp_path, monkeypatch):
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.resnet18().state_dict()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    model = build_model("resnet18", in_channels=1, pretrained=True)
    conv1 = model.backbone[0].weight
    torch.testing.assert_close(conv1, reference["conv1.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(
        model.backbone[4][0].conv1.weight, reference["layer1.0.conv1.weight"]
    )


def test_old_resnet_runs_keep_their_weight_names():
    """Runs written before timm came in hold torchvision layer names under ``backbone.<i>``."""
    keys = set(build_model("resnet18", embedding_dim=8).state_dict())
    assert {
        "backbone.0.weight",
        "backbone.4.0.conv1.weight",
        "pool.p",
        "head.linear.weight",
    } <= keys


def test_under_autocast_only_the_backbone_runs_in_reduced_precision():
    model = build_model("convnet", embedding_dim=8, in_channels=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = model.backbone(torch.randn(2, 1, 28, 28))
        out = model(torch.randn(2, 1, 28, 28))
    assert features.dtype == torch.bfloat16
    assert out.dtype == torch.float32
