"""Temperature scaling (Guo et al., 2017): one number that makes a trained model's probabilities honest.

A network trained with cross-entropy is usually over-confident: of the faces it answers with
90% confidence, fewer than 90% are right. Dividing its logits by a temperature T > 1 softens
every answer alike, so the ranking and (without test-time augmentation) every label stay as
they are while the probabilities come to mean what they say. T is fitted on the val split,
never on test, by minimising the negative log-likelihood, once per way of scoring a face
(`evaluate.tta`: none, flip), and stored in the checkpoint; every path that turns the model
into probabilities (evaluate, cross-validation, cross-dataset, fer-predict, the ONNX graph)
applies it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fer.checkpoint import Checkpoint
from fer.device import resolve_device
from fer.inference import log_probs, view_logits

METHODS = ("temperature", "none")
TTAS = ("none", "flip")


def fit_temperature(view_logits: torch.Tensor, targets) -> float:
    """The temperature that minimises the negative log-likelihood of `targets` (class indices)
    under `log_probs(view_logits, T)`; view_logits (V, N, classes) as `model.view_logits` gives them."""
    targets = torch.as_tensor(np.array(targets), dtype=torch.long)
    view_logits = view_logits.clone()  # logits made under inference_mode cannot take part in autograd
    if not len(targets):
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def nll():
        optimizer.zero_grad()
        loss = F.nll_loss(log_probs(view_logits, log_t.exp()), targets)
        loss.backward()
        return loss

    optimizer.step(nll)
    return float(log_t.detach().exp())


def calibrate(
    ckpt: Checkpoint, images: np.ndarray, facts: pd.DataFrame, method: str = "temperature", device: str = "auto"
) -> Checkpoint:
    """Fit the checkpoint's temperatures on the val split's `images` and `facts` (their `target`)
    and put them into it (`temperature`: one per tta, `calibration`: how they were fitted), before
    it is saved. method "none" stores 1 (probabilities as the network gives them). Returns `ckpt`."""
    device = resolve_device(device)
    model = ckpt.build(device)
    temps = dict.fromkeys(TTAS, 1.0)
    if method == "temperature" and len(facts):
        logits = view_logits(model, images, ckpt.data_config, device, tta="flip")
        temps = {"none": fit_temperature(logits[:1], facts["target"]), "flip": fit_temperature(logits, facts["target"])}
    ckpt.temperature = temps
    ckpt.calibration = {"method": method if len(facts) else "none", "fitted_on": "val", "images": len(facts)}
    return ckpt
