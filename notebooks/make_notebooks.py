"""Writes the notebooks from the cells below (run it after editing; outputs are not committed).

    python notebooks/make_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''import tempfile
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="pipeline-nb-"))
CLIPS, SECONDS = 4, 6.0   # tiny data (6 genres x 4 clips x 6 s) so the notebook runs in seconds'''

CORPUS = '''from pipeline.labels import stratified_labels
from pipeline.synth import make_demo_corpus

# per genre: 2 clips train, 1 val, 1 test (split by file)
labels_csv = stratified_labels(str(make_demo_corpus(WORK / "corpus", n_per_genre=CLIPS, seconds=SECONDS, speech=False)),
                               every=CLIPS)
sorted(p.name for p in (WORK / "corpus").iterdir() if p.is_dir())'''

def train_cell(model: str, epochs: int, last_line: str) -> object:
    return new_code_cell(f'''import pipeline
from pipeline.training.train import train

pipeline.extract([WORK / "corpus"], str(WORK / "features.zarr"), labels=labels_csv,
                 scheduler="synchronous", progress=False)
metrics = train(str(WORK / "features.zarr"), model="{model}", epochs={epochs}, out_dir=str(WORK / "{model}"))
{last_line}''')


NOTEBOOKS = {
    "01_audio_basics": [
        new_markdown_cell("# Audio basics\n\nThe tutorial's walkthrough on one clip: load it, look at its sample rate and "
                          "waveform, its spectrogram (linear and log frequency), and each feature the pipeline stores, "
                          "with its plot. The clip is generated (no download)."),
        new_code_cell('''import matplotlib.pyplot as plt
import numpy as np
import librosa
import librosa.display
import soundfile as sf
import tempfile
from pathlib import Path

from pipeline.synth import genre_clip

path = Path(tempfile.mkdtemp()) / "jazz.wav"
sf.write(path, genre_clip("jazz", seconds=6.0, sr=44100, seed=1), 44100)
y, sr = librosa.load(path, sr=22050, mono=True)     # exactly how the pipeline decodes
print(f"{len(y)} samples at {sr} Hz = {len(y) / sr:.2f} s (native rate {sf.info(path).samplerate} Hz)")'''),
        new_code_cell('''fig, ax = plt.subplots(figsize=(10, 3))
librosa.display.waveshow(y, sr=sr, ax=ax)
ax.set(title="waveform", xlabel="time (s)")
plt.show()'''),
        new_code_cell('''D = librosa.amplitude_to_db(np.abs(librosa.stft(y)), ref=np.max)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, scale in zip(axes, ("linear", "log")):
    img = librosa.display.specshow(D, sr=sr, x_axis="time", y_axis=scale, ax=ax)
    ax.set(title=f"spectrogram ({scale} frequency)")
fig.colorbar(img, ax=axes, format="%+2.0f dB")
plt.show()'''),
        new_markdown_cell("The pipeline computes every feature from ONE STFT per segment, batched; `compute_features` "
                          "is that kernel, equal to the librosa calls within the store's tolerance."),
        new_code_cell('''from pipeline.config import DEFAULT_FEATURES, FeatureConfig
from pipeline.features import compute_features

config = FeatureConfig(features=("spectrogram", *DEFAULT_FEATURES), segment_seconds=len(y) / sr)
features = compute_features(y[None, : config.segment_samples], config)
{name: values.shape for name, values in features.items()}'''),
        new_code_cell('''reference = librosa.feature.mfcc(y=y[: config.segment_samples], sr=sr).T
print("max |ours - librosa| for MFCC:", float(np.abs(features["mfcc"][0] - reference).max()))
fig, axes = plt.subplots(3, 1, figsize=(10, 9))
for ax, name in zip(axes, ("mel", "mfcc", "chroma")):
    img = librosa.display.specshow(features[name][0].T, sr=sr, x_axis="time", ax=ax,
                                   y_axis={"mel": "mel", "chroma": "chroma"}.get(name))
    ax.set(title=name)
    fig.colorbar(img, ax=ax)
plt.show()'''),
        new_code_cell('''t = librosa.frames_to_time(np.arange(features["rms"].shape[1]), sr=sr)
fig, ax = plt.subplots(figsize=(10, 3))
for name in ("spectral_centroid", "spectral_rolloff", "spectral_bandwidth"):
    v = features[name][0]
    ax.plot(t, (v - v.min()) / (np.ptp(v) or 1), label=name)
ax.legend(); ax.set(xlabel="time (s)", title="spectral features (normalised)")
plt.show()
print("zero-crossing rate, mean:", float(features["zero_crossing_rate"][0].mean()), " rms, mean:", float(features["rms"][0].mean()))'''),
    ],
    "02_feature_store": [
        new_markdown_cell("# A feature store\n\nExtract a small labeled corpus into a Zarr store, open it lazily with "
                          "plain xarray and with `pipeline.open_store`, select by label, aggregate."),
        new_code_cell(SETUP),
        new_code_cell(CORPUS),
        new_code_cell('''import pipeline

report = pipeline.extract([WORK / "corpus"], str(WORK / "features.zarr"), labels=labels_csv,
                          scheduler="synchronous", progress=False)
print(report.summary())'''),
        new_code_cell('''import xarray as xr

raw = xr.open_zarr(WORK / "features.zarr")        # plain xarray: every segment, lazily
ds = pipeline.open_store(str(WORK / "features.zarr"))  # only complete, valid segments
print(dict(ds.sizes)); print(ds.attrs["sr"], ds.attrs["features"])'''),
        new_code_cell('''per_label = ds.mfcc_mean.groupby("label").mean().compute()
per_label.isel(mfcc_coef=slice(0, 5)).to_pandas().round(1)'''),
        new_code_cell('''electronic = ds.where(ds.label == "electronic", drop=True)   # lazy selection by label
print(dict(electronic.sizes))
table = pipeline.query(ds, labels=["rock"], vars=["spectral_centroid", "rms"])   # the GTZAN-style table
table.head()'''),
        new_markdown_cell("A store's features can grow: asking for one more family (`contrast`, librosa's spectral "
                          "contrast) computes only it, for the files already in the store; the other variables "
                          "are not touched."),
        new_code_cell('''grown = pipeline.FeatureConfig(features=[*ds.attrs["features"], "contrast"])
report = pipeline.extract([WORK / "corpus"], str(WORK / "features.zarr"), grown, labels=labels_csv,
                          scheduler="synchronous", progress=False)
ds = pipeline.open_store(str(WORK / "features.zarr"))
print(report.chunks_computed, "chunks computed for contrast;", ds.attrs["features"])'''),
        new_code_cell('''import matplotlib.pyplot as plt

contrast = ds.spectral_contrast_mean.groupby("label").mean().compute()   # (label, contrast_band)
fig, ax = plt.subplots(figsize=(8, 3.5))
for label in contrast.label.values:
    ax.plot(contrast.contrast_band, contrast.sel(label=label), marker="o", label=str(label))
ax.set(xlabel="contrast band (6 octave bands from 200 Hz, then the rest)", ylabel="peak - valley (dB)",
       title="spectral contrast per genre")
ax.legend(fontsize="small", ncol=2)
plt.show()'''),
    ],
    "03_genre_ann": [
        new_markdown_cell("# Genre classification with an MLP on summary features\n\nThe tutorial's ANN on the "
                          "per-segment mean/std vector, trained lazily from the store, split by file."),
        new_code_cell(SETUP),
        new_code_cell(CORPUS),
        train_cell("mlp", 8, 'print("test accuracy", metrics["test_accuracy"], "majority baseline", metrics["majority_baseline"])'),
        new_code_cell('''import json
json.loads((WORK / "mlp" / "metrics.json").read_text())["confusion"]'''),
    ],
    "04_genre_cnn": [
        new_markdown_cell("# Genre classification with a CNN on mel spectrograms\n\nA small CNN over "
                          "(1, frames, mel bands) segments, read whole-chunk from the store."),
        new_code_cell(SETUP),
        new_code_cell(CORPUS),
        train_cell("cnn", 2, 'print("test accuracy", metrics["test_accuracy"], "chance", 1 / len(metrics["classes"]))'),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        for i, cell in enumerate(cells):
            cell["id"] = f"cell-{i}"  # stable ids: regenerating gives no spurious diff
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
