"""``stemwright export-onnx -m MODEL -o out.onnx``: export a model's learned core to ONNX (+ JSON sidecar)."""
from __future__ import annotations

from pathlib import Path

import typer


def command(
    model: str = typer.Option(..., "-m", "-n", "--model", help="Model name, published name or checkpoint path."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .onnx file (a NAME.onnx.json sidecar is written beside it)."),
    seconds: float = typer.Option(4.0, "--seconds", min=0.1, help="Length of the random audio the graph is traced on."),
    opset: int = typer.Option(17, "--opset", min=11, help="ONNX opset version."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run ONNX Runtime once and compare with torch (1e-4)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    offline: bool = typer.Option(False, "--offline", help="Never download; published models must be cached."),
) -> None:
    """Export a model to ONNX: STFT and other signal processing stay outside the graph (stemwright runs them), the
    learned core goes in the .onnx file. Run the result with `stemwright separate -m out.onnx`."""
    from stemwright.cli.common import fail, fail_from
    from stemwright.models.onnx import export_onnx, sidecar_path
    from stemwright.pretrained.loading import load_model

    try:
        net = load_model(model, device="cpu", offline=offline)
        path = export_onnx(net, output, seconds=seconds, opset=opset, check=check, overwrite=overwrite)
    except ValueError as e:  # OnnxExportError, catalogue/download/format errors are ValueErrors
        fail_from(e)
    except OSError as e:
        fail(f"{output}: {e.strerror or e}")
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB) and {sidecar_path(path)}")
