"""Spectral toolkit shared by every model: STFT, masks, Wiener filtering, overlap-add windows."""
