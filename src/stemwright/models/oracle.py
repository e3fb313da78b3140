"""Oracle separators: masks computed from the true stems, the upper bound of masking at a given STFT.

They need the references, so they are built per track: ``load_model("oracle_irm", references={"vocals": (C, T),
...}, samplerate=44100)``. ``segment = None``: the engine runs them on the whole track in one call, where the mixture
lines up sample for sample with the references.

- ``oracle_ibm`` — ideal binary mask: each time-frequency bin goes to the loudest source (winner takes all).
- ``oracle_irm`` — ideal ratio mask ``|S_j|^p / Σ_k |S_k|^p`` (p = 2 by default, sigsep-mus-oracle's ``IRM2``).
- ``oracle_mwf`` — oracle multichannel Wiener filter (Duong, Vincent & Gribonval, "Under-determined reverberant audio
  source separation using a full-rank spatial covariance model", IEEE TASLP 2010, Eq. 4-6; SiSEC oracle ``MWF``):
  source power spectral densities ``v_j(f, n) = mean_c |S_j|²`` and spatial covariances ``R_j(f) = Σ_n S_j S_j^H /
  Σ_n v_j`` from the true stems, then ``Ŝ_j = v_j R_j (Σ_k v_k R_k)^-1 X``.

Masks are applied to the mixture's STFT (:mod:`stemwright.dsp.stft`); references are never modified.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from stemwright.dsp.masks import binary_mask, ratio_mask
from stemwright.dsp.stft import StftConfig, istft, stft

KINDS = ("ibm", "irm", "mwf")


@dataclass(frozen=True, kw_only=True)
class OracleConfig:
    """Which oracle, at which STFT. ``power``: exponent of the ratio mask (irm)."""

    kind: str = "irm"
    sources: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    samplerate: int = 44100
    audio_channels: int = 2
    n_fft: int = 4096
    hop_length: int = 1024
    power: float = 2.0
    ridge: float = 1e-10  # relative diagonal loading of the mixture covariance before inversion (mwf)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"OracleConfig.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.sources:
            raise ValueError("OracleConfig.sources is empty")
        if self.audio_channels not in (1, 2):
            raise ValueError(f"OracleConfig.audio_channels must be 1 or 2, got {self.audio_channels}")
        if self.power <= 0:
            raise ValueError(f"OracleConfig.power must be positive, got {self.power}")


class OracleSeparator(nn.Module):
    """Separates the one mixture its references belong to. ``references``: ``(S, C, T)`` float tensor."""

    config_class = OracleConfig
    segment: float | None = None

    def __init__(self, config: OracleConfig, references: torch.Tensor):
        super().__init__()
        self.config = config
        self.sources = config.sources
        self.samplerate = config.samplerate
        self.audio_channels = config.audio_channels
        self.segment = None
        expected = (len(config.sources), config.audio_channels)
        if references.dim() != 3 or tuple(references.shape[:2]) != expected:
            raise ValueError(f"references must have shape (sources={expected[0]}, channels={expected[1]}, time), "
                             f"got {tuple(references.shape)}")
        self.register_buffer("references", references.detach().to(torch.float32).clone(), persistent=False)
        self.stft_config = StftConfig(n_fft=config.n_fft, hop_length=config.hop_length)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: ``(B, C, T)`` -> ``(B, S, C, T)``; every batch item must be the references' own mixture length."""
        refs = self.references
        if mix.shape[-1] != refs.shape[-1] or mix.shape[-2] != refs.shape[-2]:
            raise ValueError(
                f"oracle_{self.config.kind}: mixture is {mix.shape[-2]}ch x {mix.shape[-1]} samples but the references "
                f"are {refs.shape[-2]}ch x {refs.shape[-1]}; run it on the whole track (segment=None) at "
                f"{self.samplerate} Hz"
            )
        cfg = self.stft_config
        spec_mix = stft(mix, cfg)  # (B, C, F, N)
        spec_refs = stft(refs.to(mix.device), cfg)  # (S, C, F, N)
        if self.config.kind == "mwf":
            out = _oracle_mwf(spec_refs, spec_mix, self.config.ridge)
        else:
            mag = spec_refs.abs()
            if self.config.kind == "ibm":
                mask = binary_mask(mag, source_dim=0)
            else:
                mask = ratio_mask(mag, power=self.config.power, source_dim=0)
            out = mask.unsqueeze(0) * spec_mix.unsqueeze(1)  # (B, S, C, F, N)
        return istft(out, cfg, length=mix.shape[-1])


def _oracle_mwf(spec_refs: torch.Tensor, spec_mix: torch.Tensor, ridge: float) -> torch.Tensor:
    """Shape: references ``(S, C, F, N)``, mixture ``(B, C, F, N)`` complex -> ``(B, S, C, F, N)``."""
    s, c, f, n = spec_refs.shape
    v = spec_refs.abs().pow(2).mean(dim=1)  # (S, F, N)
    # spatial covariance per source and frequency, normalised by the PSD (Duong et al. 2010, Eq. 4)
    r = torch.einsum("sifn,sjfn->sfij", spec_refs, spec_refs.conj()) / v.sum(-1).clamp_min(1e-20)[..., None, None].to(spec_refs.dtype)
    cov = torch.einsum("sfn,sfij->sfnij", v.to(r.dtype), r)  # (S, F, N, C, C)
    total = cov.sum(0)
    scale = total.diagonal(dim1=-2, dim2=-1).real.mean(-1).clamp_min(1e-20)  # (F, N)
    eye = torch.eye(c, dtype=total.dtype, device=total.device)
    inv = torch.linalg.inv(total + (ridge * scale)[..., None, None].to(total.dtype) * eye + 1e-20 * eye)
    gain = cov @ inv  # (S, F, N, C, C)
    x = spec_mix.permute(0, 2, 3, 1).unsqueeze(1)  # (B, 1, F, N, C)
    est = torch.einsum("sfnij,bsfnj->bsfni", gain, x.expand(-1, s, -1, -1, -1))
    return est.permute(0, 1, 4, 2, 3)


def _references(references: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor,
                sources: tuple[str, ...] | None) -> tuple[torch.Tensor, tuple[str, ...]]:
    if references is None:
        raise ValueError("oracle models need the true stems: load_model('oracle_irm', references={stem: (C, T)})")
    if isinstance(references, Mapping):
        names = tuple(sources or references.keys())
        missing = [k for k in names if k not in references]
        if missing:
            raise ValueError(f"references lack stem(s) {', '.join(missing)}")
        arrays = [np.asarray(references[k], dtype=np.float32) for k in names]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"reference stems differ in shape: {dict(zip(names, [a.shape for a in arrays]))}")
        return torch.from_numpy(np.stack(arrays)), names
    t = torch.as_tensor(np.asarray(references, dtype=np.float32))
    if sources is None or len(sources) != t.shape[0]:
        raise ValueError("with a (S, C, T) array of references, pass sources=(name, ...) of length S")
    return t, tuple(sources)


def _build(kind: str, references: Mapping[str, np.ndarray] | np.ndarray | torch.Tensor | None = None,
           samplerate: int = 44100, sources: tuple[str, ...] | None = None, **options: object) -> OracleSeparator:
    refs, names = _references(references, sources)  # type: ignore[arg-type]
    config = OracleConfig(kind=kind, sources=names, samplerate=int(samplerate), audio_channels=int(refs.shape[1]),
                          **options)  # type: ignore[arg-type]
    return OracleSeparator(config, refs)


def build_ibm(references=None, samplerate: int = 44100, sources=None, **options) -> OracleSeparator:  # type: ignore[no-untyped-def]
    """Registry loader of ``oracle_ibm``. ``references``: ``{stem: (C, T)}`` at ``samplerate``."""
    return _build("ibm", references, samplerate, sources, **options)


def build_irm(references=None, samplerate: int = 44100, sources=None, **options) -> OracleSeparator:  # type: ignore[no-untyped-def]
    """Registry loader of ``oracle_irm``. ``references``: ``{stem: (C, T)}`` at ``samplerate``."""
    return _build("irm", references, samplerate, sources, **options)


def build_mwf(references=None, samplerate: int = 44100, sources=None, **options) -> OracleSeparator:  # type: ignore[no-untyped-def]
    """Registry loader of ``oracle_mwf``. ``references``: ``{stem: (C, T)}`` at ``samplerate``."""
    return _build("mwf", references, samplerate, sources, **options)
