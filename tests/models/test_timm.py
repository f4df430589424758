"""timm backbones: built without pretrained weights, weights from a local file or timm's cache,
the input adapter from the pretrained config, and bad weights files refused with a clear message.
Nothing is downloaded: every model is built with pretrained=False and weights go to tmp_path."""

import pickle

import pytest
import timm
import torch
from safetensors.torch import save_file

from dmlviz.models import PretrainedWeightsError, build_model, data_config, model_image_size
from dmlviz.models.timm_backbone import InputAdapter
from dmlviz.models.weights import read_state_dict

NAME = "resnet18"  # small and convolutional; a feature map, so dmlviz's GeM pools it


def _timm_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model(NAME, pretrained=False).state_dict()  # with its classifier fc.*


def test_a_timm_model_under_the_embedding_head():
    model = build_model(f"timm:{NAME}", embedding_dim=16, in_channels=3, image_size=64)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert type(model.pool).__name__ == "GeM"
    groups = model.backbone_parameters() + model.head_parameters()
    assert {id(p) for p in groups} == {id(p) for p in model.parameters() if p.requires_grad}


def test_a_token_model_keeps_timms_own_pooling():
    model = build_model("timm:vit_tiny_patch16_224", embedding_dim=8)
    assert isinstance(model.pool, torch.nn.Identity) and model.backbone.pooled
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 8)
    with pytest.raises(ValueError, match="image_size=64 does not fit.*224 px images only"):
        build_model("timm:vit_tiny_patch16_224", embedding_dim=8, image_size=64)


def test_weights_file_loads_safetensors_and_pth_dropping_the_classifier(tmp_path):
    state = _timm_state(seed=3)
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pth")
    for file in ("w.safetensors", "w.pth"):
        model = build_model(f"timm:{NAME}", embedding_dim=8, weights=tmp_path / file)
        torch.testing.assert_close(model.backbone.net.conv1.weight, state["conv1.weight"])
        torch.testing.assert_close(
            model.backbone.net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"]
        )


def test_pretrained_comes_from_the_local_hf_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PretrainedWeightsError) as info:
        build_model(f"timm:{NAME}", pretrained=True)
    message = str(info.value)
    assert "models--timm--resnet18.a1_in1k/snapshots/<revision>/model.safetensors" in message
    assert "hf download timm/resnet18.a1_in1k" in message and "--weights FILE" in message

    # the layout huggingface_hub writes: blobs, a snapshot per revision, refs/main
    repo = tmp_path / "models--timm--resnet18.a1_in1k"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    state = _timm_state(seed=4)
    save_file(state, repo / "snapshots" / "abc123" / "model.safetensors")
    model = build_model(f"timm:{NAME}", pretrained=True)
    torch.testing.assert_close(model.backbone.net.conv1.weight, state["conv1.weight"])


def test_data_config_is_the_models_pretrained_config():
    config = data_config("vit_small_patch14_dinov2")
    assert config["input_size"] == (3, 518, 518)
    assert config["interpolation"] == "bicubic"
    assert model_image_size("timm:vit_small_patch14_dinov2") == 518
    assert model_image_size("convnet") is None
    clip = data_config("vit_base_patch16_clip_224.openai")
    assert clip["mean"] == pytest.approx((0.4815, 0.4578, 0.4082), abs=1e-4)


def test_input_adapter_maps_dmlvizs_input_to_the_backbones_normalisation():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    pixels = torch.rand(2, 3, 4, 4)
    imagenet = (pixels - torch.tensor((0.485, 0.456, 0.406)).view(3, 1, 1)) / torch.tensor(
        (0.229, 0.224, 0.225)
    ).view(3, 1, 1)
    expected = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(InputAdapter(3, mean, std)(imagenet), expected)
    grey = torch.rand(2, 1, 4, 4)  # Omniglot on an RGB backbone: the grey value in each channel
    expected = (grey.expand(-1, 3, -1, -1) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(
        std
    ).view(3, 1, 1)
    torch.testing.assert_close(InputAdapter(1, mean, std)(grey), expected)
    model = build_model(f"timm:{NAME}", embedding_dim=8, in_channels=1)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 8)
    assert not any("adapter" in key for key in model.state_dict())  # derived, not saved


def test_weights_with_wrong_shapes_are_refused(tmp_path):
    state = _timm_state()
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(PretrainedWeightsError, match=r"wrong shape: conv1.weight \(64, 3, 5, 5\)"):
        build_model(f"timm:{NAME}", weights=tmp_path / "bad.pth")
    torch.save(timm.create_model("resnet34").state_dict(), tmp_path / "other.pth")
    with pytest.raises(PretrainedWeightsError, match="unexpected: layer1.2"):
        build_model(f"timm:{NAME}", weights=tmp_path / "other.pth")


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(PretrainedWeightsError, match="holds a list, not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"conv1.weight": 3}, tmp_path / "int.pth")
    with pytest.raises(PretrainedWeightsError, match="'conv1.weight' is not a named tensor"):
        read_state_dict(tmp_path / "int.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PretrainedWeightsError, match="not valid safetensors"):
        read_state_dict(tmp_path / "junk.safetensors")
    with pytest.raises(PretrainedWeightsError, match="unknown suffix '.npz'"):
        (tmp_path / "w.npz").write_bytes(b"")
        read_state_dict(tmp_path / "w.npz")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(PretrainedWeightsError, match="junk.pth cannot be read.*damaged"):
        read_state_dict(tmp_path / "junk.pth")
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        read_state_dict(tmp_path / "absent.pth")


class _RunsCode:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pth", "wb") as file:
        pickle.dump({"conv1.weight": _RunsCode()}, file)
    with pytest.raises(
        PretrainedWeightsError, match="weights_only=True.*needs code to load, which is never run"
    ):
        build_model(f"timm:{NAME}", weights=tmp_path / "evil.pth")
    assert not (tmp_path / "PWNED").exists()


def test_unknown_timm_name_and_weights_for_a_model_without_them():
    with pytest.raises(ValueError, match="timm:resnet_nope.*unknown to timm"):
        build_model("timm:resnet_nope")
    with pytest.raises(ValueError, match="weights='w.pth'.*not 'convnet'"):
        build_model("convnet", weights="w.pth")
