"""A run's model weights (``model.safetensors``) and trainer state (``trainer_state.pt``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmlviz.runs.atomic import atomic_writer
from dmlviz.runs.files import CONFIG, MODEL, STATUS, TRAINER_STATE
from dmlviz.runs.store import RunError, RunFiles

if TYPE_CHECKING:
    import torch


class Weights(RunFiles):
    """The part of ``Run`` that saves and rebuilds the model and the trainer's state."""

    def save_model(self, model: torch.nn.Module) -> None:
        """Write the model's weights as safetensors (no code is ever loaded back)."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_writer(self.path / MODEL) as tmp:
            save_file(state, str(tmp))

    def has_model(self) -> bool:
        """Whether ``model.safetensors`` exists."""
        return (self.path / MODEL).exists()

    def load_model(self, device: str = "cpu") -> torch.nn.Module:
        """Rebuild the model from ``config.json`` alone and load its saved weights (eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from dmlviz.models import build_model
        from dmlviz.runs.imported import is_imported

        weights = self.path / MODEL
        if is_imported(self.config):
            raise RunError(f"{self.path} holds imported embeddings: it has no model to load")
        if not weights.exists():
            raise RunError(self._missing_weights())
        model = build_model(**self.model_kwargs())
        try:
            state = load_file(str(weights), device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise RunError(
                f"{weights} is corrupt ({error}); resume training to rewrite it"
            ) from None
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise RunError(f"{weights} does not fit the model in {CONFIG}: {error}") from None
        return model.to(device).eval()

    def _missing_weights(self) -> str:
        weights = self.path / MODEL
        if (self.path / TRAINER_STATE).exists():
            return (
                f"{weights} is missing, but {TRAINER_STATE} holds the weights of the last complete "
                f"epoch: `dmlviz train --resume --out {self.path}` writes it again"
            )
        try:  # status.json as written: without one, the run never finished an epoch
            epoch = (self._read_json(STATUS, required=False) or {}).get("epoch")
        except RunError:
            epoch = None
        if epoch:
            return (
                f"{weights} is missing (the run trained {epoch} epoch(s), and {TRAINER_STATE} is "
                "gone too): retrain the run"
            )
        return f"{weights} is missing: the run never finished an epoch; resume or retrain it"

    def model_kwargs(self) -> dict[str, Any]:
        """The ``build_model`` arguments recorded in the config."""
        c = self.config
        kwargs = {"name": c["model"], "embedding_dim": c["embedding_dim"]}
        for key in ("in_channels", "image_size", "pooling", "freeze_bn", "layer_norm"):
            if key in c and c[key] is not None:
                kwargs[key] = c[key]
        return kwargs

    def save_trainer_state(self, state: dict[str, Any]) -> None:
        """Write optimizer/scheduler/RNG/epoch state (tensors and plain Python values only)."""
        import torch

        with atomic_writer(self.path / TRAINER_STATE) as tmp:
            torch.save(state, tmp)

    def load_trainer_state(self) -> dict[str, Any] | None:
        """The saved trainer state, loaded with ``weights_only=True``; None when absent."""
        import torch

        path = self.path / TRAINER_STATE
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a damaged file
            raise RunError(f"{path} is corrupt ({error}); delete it to restart training") from None
